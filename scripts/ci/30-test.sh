#!/usr/bin/env bash
# The workspace test suite: unit, property, integration and end-to-end tests. Tests that drive
# real tools (QuickFIX, promtool, prometheus, systemd-analyze) need them installed first.
set -euo pipefail
source scripts/ci/lib.sh
need_cargo_tool cargo-nextest cargo-nextest
# appliance/tests/telemetry_monitoring.rs runs promtool and a real Prometheus server.
need_apt promtool prometheus
need_pip_requirements
cargo nextest run --workspace --locked --no-fail-fast

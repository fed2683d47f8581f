#!/usr/bin/env bash
# Monitoring assets: the Prometheus configuration and alert rules pass promtool, the rule unit
# tests pass, the Grafana dashboards are valid JSON; then the live checks (every metric name
# used by an alert or dashboard exists on a running appliance's /metrics, and a real
# Prometheus server scrapes the appliance under load).
set -euo pipefail
source scripts/ci/lib.sh
need_apt promtool prometheus
need_apt prometheus prometheus
need_cargo_tool cargo-nextest cargo-nextest

(
    cd monitoring
    promtool check config prometheus.yml
    promtool check rules alerts.yml
    promtool test rules tests/alerts_test.yml
)
for f in monitoring/grafana/dashboards/*.json; do
    python3 -m json.tool "$f" >/dev/null || { echo "invalid JSON: $f" >&2; exit 1; }
done
echo "dashboards: $(find monitoring/grafana/dashboards -name '*.json' | wc -l) valid JSON files"
cargo nextest run --locked -p appliance --test telemetry_monitoring --test telemetry_exporter \
    --test telemetry_no_alloc

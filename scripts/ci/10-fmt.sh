#!/usr/bin/env bash
# Formatting is checked, never rewritten, in CI.
set -euo pipefail
cargo fmt --all --check

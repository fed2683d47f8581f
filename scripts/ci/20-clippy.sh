#!/usr/bin/env bash
# Every lint is an error: the tree stays clippy-clean, tests and benches included.
set -euo pipefail
cargo clippy --workspace --all-targets --locked -- -D warnings

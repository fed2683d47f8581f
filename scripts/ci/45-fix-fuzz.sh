#!/usr/bin/env bash
# Time-bounded fuzzing of the FIX parser and session state machine (proptest-driven: stable
# Rust only). Three targets run side by side for FIX_FUZZ_SECS each (default 15 s), in release
# mode so each second covers many more cases; a failure prints proptest's minimal input.
set -euo pipefail
export FIX_FUZZ_SECS="${FIX_FUZZ_SECS:-15}"
cargo test --release --locked -p fix --test fuzz -- --test-threads 3

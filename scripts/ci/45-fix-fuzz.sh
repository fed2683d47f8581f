#!/usr/bin/env bash
# Time-bounded fuzzing of the FIX parser and session state machine (proptest-driven: stable
# Rust only). Three targets run side by side for FIX_FUZZ_SECS each (default 15 s), in the dev
# profile so integer overflow checks are on (an overflow is a failure, not a wrapped value);
# a failure prints proptest's minimal input.
set -euo pipefail
export FIX_FUZZ_SECS="${FIX_FUZZ_SECS:-15}"
cargo test --locked -p fix --test fuzz -- --test-threads 3 --nocapture

#!/usr/bin/env bash
# Time-bounded fuzzing (proptest-driven: stable Rust only), in the dev profile so integer
# overflow checks are on (an overflow is a failure, not a wrapped value):
# - the FIX parser and session state machine (fix/tests/fuzz.rs): three targets side by side
#   for FIX_FUZZ_SECS each (default 15 s); a failure prints proptest's minimal input;
# - the gateways through their real sockets (appliance/tests/gateway_fuzz.rs): raw and
#   mutated FIX and binary traffic into an in-process appliance per I/O backend (epoll and
#   io_uring side by side), four targets of FIX_FUZZ_SECS each per backend plus the regression
#   corpus (appliance/tests/fuzz-corpus/), with a health check the appliance must keep passing;
#   a failure writes the cases since the last passing check to target/gateway-fuzz-failures/.
set -euo pipefail
export FIX_FUZZ_SECS="${FIX_FUZZ_SECS:-15}"
cargo test --locked -p fix --test fuzz -- --test-threads 3 --nocapture
cargo test --locked -p appliance --test gateway_fuzz -- --test-threads 2 --nocapture

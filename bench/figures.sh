#!/usr/bin/env bash
# Reproduces the load-generator figures of docs/benchmarks.md: floor, round trips at several
# rates, same-run floor ratios, throughput ceilings, internal (TSC) latency from the appliance,
# and the busy-spin variant. Every run's JSON line goes to $OUT/results.jsonl, reports
# (.hgrm/.json/.svg) to $OUT, the appliance's stage summaries to $OUT/internal-*.txt.
#
#   cargo build --release -p appliance -p bench
#   bench/figures.sh [RUNS]          # RUNS repetitions of each latency figure (default 3)
#
# Takes about RUNS x 2.5 minutes. Nothing else should run on the machine meanwhile; say what
# did in the report if something had to.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
parts=${PARTS:-closed open throughput busy}   # PARTS="busy" bench/figures.sh 3: only that part
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release}
OUT=${OUT:-out/figures}
mkdir -p "$OUT"
results=$OUT/results.jsonl
touch "$results"

# The embedded default configuration, moved to ports 19878/19879/19100 (as the bench configs)
# so that nothing else listening on the defaults can be measured by mistake.
default_cfg=$OUT/default-ports-19xxx.toml
"$bin/appliance" --print-default-config |
    sed 's/127.0.0.1:9878/127.0.0.1:19878/; s/127.0.0.1:9879/127.0.0.1:19879/; s/127.0.0.1:9100/127.0.0.1:19100/' \
        >"$default_cfg"
app_pid=
start_app() { # start_app NAME CONFIG
    local name=$1 cfg=$2
    if (exec 3<>/dev/tcp/127.0.0.1/19879) 2>/dev/null; then
        echo "something already listens on 19879" >&2
        return 1
    fi
    ${APP_PREFIX:-} "$bin/appliance" run --config "$cfg" --run-for 600 --histograms "$OUT/internal-$name.txt" \
        >"$OUT/appliance-$name.log" 2>&1 &
    app_pid=$!
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/19879) 2>/dev/null && return 0
        kill -0 "$app_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "appliance did not start: $(tail -1 "$OUT/appliance-$name.log")" >&2
    return 1
}
stop_app() {
    kill -INT "$app_pid"
    wait "$app_pid" || true
}
trap '[ -n "$app_pid" ] && kill "$app_pid" 2>/dev/null || true' EXIT
bench() { # bench TAG args...: one run, JSON line tagged and appended
    local tag=$1
    shift
    local port=()
    case "$*" in
    latency*protocol\ fix*) port=(--port 19878) ;;
    latency*) port=(--port 19879) ;;
    esac
    "$bin/bench" "$@" "${port[@]}" --json --plain |
        python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d["tag"]=sys.argv[1]; print(json.dumps(d))' "$tag" |
        tee -a "$results"
}

want() { [[ " $parts " == *" $1 "* ]]; }

# Same-run floor ratios: closed loop, one connection, each run followed by its own floor.
if want closed; then
start_app closed "$default_cfg"
for i in $(seq "$runs"); do
    bench "binary-closed" latency --protocol binary --mode closed --duration 5 --floor --out "$OUT" --label "binary-closed-$i"
    bench "fix-closed" latency --protocol fix --mode closed --duration 5 --floor --out "$OUT" --label "fix-closed-$i"
done
stop_app
fi

# Open loop at several rates (coordinated-omission corrected), one connection; internal
# latency at 20,000/s comes from the appliance's own histograms over that run alone.
want open && for rate in 1000 5000 20000; do
    start_app "open-$rate" "$default_cfg"
    for i in $(seq "$runs"); do
        bench "binary-open-$rate" latency --protocol binary --rate "$rate" --duration 10 --out "$OUT" --label "binary-open-$rate-$i"
    done
    stop_app
    start_app "fix-open-$rate" "$default_cfg"
    for i in $(seq "$runs"); do
        bench "fix-open-$rate" latency --protocol fix --rate "$rate" --duration 10 --out "$OUT" --label "fix-open-$rate-$i"
    done
    stop_app
done

# Throughput ceilings: pipelined over 4 connections (many-sessions config), passive mix
# (one acknowledgement per request); the generator's own ceiling against the echo server.
if want throughput; then
start_app throughput bench/configs/many-sessions.toml
bench "binary-pipelined" latency --protocol binary --mode pipelined --window 256 --connections 4 --mix passive --duration 5 --out "$OUT"
bench "fix-pipelined" latency --protocol fix --mode pipelined --window 256 --connections 4 --mix passive --duration 5 --out "$OUT"
stop_app
bench "echo-pipelined-binary-sizes" floor --mode pipelined --window 256 --connections 4 --duration 5
bench "echo-pipelined-fix-sizes" floor --protocol fix --mode pipelined --window 256 --connections 4 --duration 5
fi

# Busy-spin appliance (engine core 1, gateway core 0): the generator shares those cores.
if want busy; then
start_app busy-spin bench/configs/busy-spin.toml
for i in $(seq "$runs"); do
    bench "busy-binary-closed" latency --protocol binary --mode closed --duration 5 --floor --floor-spin --wait spin --out "$OUT" --label "busy-binary-closed-$i"
done
bench "busy-binary-open-20000" latency --protocol binary --rate 20000 --duration 10 --out "$OUT" --label busy-binary-open-20000
stop_app
fi
trap - EXIT
echo "results: $results"
python3 bench/figures-table.py "$results"

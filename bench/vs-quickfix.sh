#!/usr/bin/env bash
# The appliance against the QuickFIX comparator (bench/quickfix_venue.py) on one machine, in
# one sitting: the relative latency targets are stated against "a QuickFIX acceptor with order
# matching, measured by `bench latency` in the same run".
#
# Starts the appliance on its embedded default configuration moved to ports 19878/19879/19100
# (threading "auto", which is "shared" on a host with fewer than 3 CPUs) and the QuickFIX venue
# on 19888; both stay up for the sitting, and the one not being measured is idle (parked, or
# in select). Then N rounds of, in this order:
#   floor-spin-fix        bench floor --protocol fix --server-spin (loopback TCP ping-pong with
#                         FIX sizes against a spinning echo server: the fair floor)
#   appliance-fix-closed  bench latency --protocol fix --mode closed against the appliance
#   quickfix-fix-closed   the same against the QuickFIX venue
# Every JSON line is tagged (tag, round, sitting) and appended to $OUT/results.jsonl; at the
# end a table of this sitting: median p50 and p99 of each, and the ratio QuickFIX/appliance.
#
#   cargo build --release -p appliance -p bench
#   bench/vs-quickfix.sh [N]            # N rounds (default 3); or N=... in the environment
#
# Environment: BIN (binaries, default $CARGO_TARGET_DIR/release or target/release), OUT
# (default out/vs-quickfix), DURATION and WARMUP (seconds per run, default 5 and 1), PYTHON
# (an interpreter with `quickfix`, default python3). Figures from a shared or loaded machine
# are not final figures: say what else ran.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-${N:-3}}
duration=${DURATION:-5}
warmup=${WARMUP:-1}
python=${PYTHON:-python3}
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release}
OUT=${OUT:-out/vs-quickfix}
mkdir -p "$OUT"
results=$OUT/results.jsonl
touch "$results"
sitting=$(date -u +%Y%m%dT%H%M%SZ)

for tool in "$bin/appliance" "$bin/bench"; do
    [ -x "$tool" ] || { echo "$tool not found: cargo build --release -p appliance -p bench (or set BIN)" >&2; exit 1; }
done
"$python" -c 'import quickfix' 2>/dev/null || { echo "$python cannot import quickfix: pip install quickfix-ssl" >&2; exit 1; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 19878 19879 19100 19888; do
    if listening "$port"; then
        echo "something already listens on 127.0.0.1:$port: stop it first" >&2
        exit 1
    fi
done

app_pid='' qf_pid=''
stop_all() { # SIGINT/SIGTERM: both log their sessions out and exit
    if [ -n "$app_pid" ]; then
        kill -INT "$app_pid" 2>/dev/null || true
        wait "$app_pid" 2>/dev/null || true
    fi
    if [ -n "$qf_pid" ]; then
        kill -TERM "$qf_pid" 2>/dev/null || true
        wait "$qf_pid" 2>/dev/null || true
    fi
    app_pid='' qf_pid=''
}
trap stop_all EXIT

# Long enough for the whole sitting; both are stopped at the end.
run_for=$(awk -v n="$rounds" -v d="$duration" -v w="$warmup" 'BEGIN { printf "%d", n * (3 * (d + w) + 15) + 120 }')

config=$OUT/default-ports-19xxx.toml
"$bin/appliance" --print-default-config |
    sed 's/127.0.0.1:9878/127.0.0.1:19878/; s/127.0.0.1:9879/127.0.0.1:19879/; s/127.0.0.1:9100/127.0.0.1:19100/' \
        >"$config"
"$bin/appliance" run --config "$config" --run-for "$run_for" --histograms "$OUT/appliance-internal-$sitting.txt" \
    >"$OUT/appliance-$sitting.log" 2>&1 &
app_pid=$!
"$python" bench/quickfix_venue.py --port 19888 --run-for "$run_for" >"$OUT/quickfix-$sitting.log" 2>&1 &
qf_pid=$!
both_up() { listening 19878 && grep -q '^listening on' "$OUT/quickfix-$sitting.log"; }
for _ in $(seq 150); do
    both_up && break
    kill -0 "$app_pid" 2>/dev/null || { echo "appliance exited: $(tail -3 "$OUT/appliance-$sitting.log")" >&2; exit 1; }
    kill -0 "$qf_pid" 2>/dev/null || { echo "QuickFIX venue exited: $(tail -3 "$OUT/quickfix-$sitting.log")" >&2; exit 1; }
    sleep 0.2
done
if ! both_up; then
    echo "the venues did not start listening within 30 s" >&2
    exit 1
fi

bench() { # bench TAG ROUND args...: one run, its JSON line tagged and appended
    local tag=$1 round=$2
    shift 2
    "$bin/bench" "$@" --duration "$duration" --warmup "$warmup" --json --plain |
        "$python" -c 'import json, sys
d = json.loads(sys.stdin.read())
d.update(tag=sys.argv[1], round=int(sys.argv[2]), sitting=sys.argv[3])
print(json.dumps(d))' "$tag" "$round" "$sitting" |
        tee -a "$results"
}

for round in $(seq "$rounds"); do
    bench floor-spin-fix "$round" floor --protocol fix --server-spin --mode closed
    bench appliance-fix-closed "$round" latency --protocol fix --port 19878 --mode closed
    bench quickfix-fix-closed "$round" latency --protocol fix --port 19888 --mode closed
done
stop_all
trap - EXIT

echo "results: $results (sitting $sitting)"
"$python" - "$results" "$sitting" <<'PY'
import json, statistics, sys
path, sitting = sys.argv[1], sys.argv[2]
runs = {}
for line in open(path):
    if line.strip():
        d = json.loads(line)
        if d.get("sitting") == sitting:
            runs.setdefault(d["tag"], []).append(d)
def median(tag, key):
    return statistics.median(d[key] for d in runs[tag]) / 1000
print("| run | n | p50 us | p99 us | orders | unanswered |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for tag, ds in runs.items():
    print("| %s | %d | %.1f | %.1f | %d | %d |" % (
        tag, len(ds), median(tag, "p50_ns"), median(tag, "p99_ns"),
        sum(d["orders"] for d in ds), sum(d["unanswered"] for d in ds)))
    for d in ds:
        if d.get("errors"):
            print("  errors in %s round %d: %s" % (tag, d["round"], d["errors"]))
a, q = "appliance-fix-closed", "quickfix-fix-closed"
if a in runs and q in runs:
    for key, name in (("p50_ns", "p50"), ("p99_ns", "p99")):
        print("QuickFIX/appliance %s: %.2fx (medians %.1f / %.1f us)" % (
            name, median(q, key) / median(a, key), median(q, key), median(a, key)))
PY

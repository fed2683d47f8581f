#!/usr/bin/env bash
# The figures issues 10 (durability) and 11 (threading modes) set targets on, in one sitting,
# each compared with a baseline measured in the same sitting (docs/benchmarks.md).
#
#   cargo build --release -p appliance -p bench
#   bench/targets.sh [RUNS]        # RUNS repetitions of each latency figure (default 3)
#   PARTS="journal recovery" bench/targets.sh 3     # only those parts
#
# Parts (PARTS, default all, in this order):
#   threading  closed loop (binary, FIX) with the spinning-server floor measured right after
#              each run, and binary open loop at 20,000/s with its floor: in `auto` (which is
#              `shared` on a host with fewer than 3 CPUs) and in `dedicated`, same sitting
#   throughput pipelined over 4 connections (bench/configs/many-sessions.toml), window 256,
#              passive mix, binary and FIX, journal `written` and `off`
#   journal    closed loop, both protocols, `journal.ack` = off / written / fsync interleaved
#              (the written/off ratio), placements `thread` and `duty-cycle` in shared mode
#   feed       issue 14: the order-entry round trip with the market-data feed off and on,
#              interleaved (closed loop, open loop 20,000/s, pipelined), the feed's messages/s
#              during the pipelined run and the publisher's lag over each run (its log line)
#   recovery   1,000,000 resting orders (`--mix rest`), a clean stop (final snapshot), then
#              100,000 more and SIGKILL: start-up recovery (snapshot + tail) timed 3 times
#
# Every JSON line goes to $OUT/results.jsonl tagged; recovery lines to $OUT/recovery.txt; the
# tables at the end come from bench/targets-table.py. Takes about RUNS x 3 minutes. Nothing
# else should run on the machine meanwhile; say what did if something had to.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
parts=${PARTS:-threading throughput journal feed recovery}
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release}
OUT=${OUT:-out/targets}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
results=$OUT/results.jsonl
touch "$results"
want() { [[ " $parts " == *" $1 "* ]]; }

for tool in "$bin/appliance" "$bin/bench"; do
    [ -x "$tool" ] || { echo "$tool not found: cargo build --release -p appliance -p bench (or set BIN)" >&2; exit 1; }
done

# config NAME [sed expressions...]: the embedded default on ports 19878/19879/19100,
# journaling into $OUT/journal-NAME (emptied), edited by the sed expressions.
config() {
    local name=$1
    shift
    local f=$OUT/$name.toml
    rm -rf "$OUT/journal-$name"
    "$bin/appliance" --print-default-config |
        sed -e 's/127.0.0.1:9878/127.0.0.1:19878/; s/127.0.0.1:9879/127.0.0.1:19879/; s/127.0.0.1:9100/127.0.0.1:19100/' \
            -e "s|^dir = \"appliance-data\"|dir = \"$OUT/journal-$name\"|" "$@" >"$f"
    echo "$f"
}
# many NAME ACK: bench/configs/many-sessions.toml journaling into $OUT/journal-NAME.
many() {
    local f=$OUT/$1.toml
    rm -rf "$OUT/journal-$1"
    { cat bench/configs/many-sessions.toml; printf '\n[journal]\nack = "%s"\ndir = "%s"\n' "$2" "$OUT/journal-$1"; } >"$f"
    echo "$f"
}

app_pid=
start_app() { # start_app NAME CONFIG
    local name=$1 cfg=$2
    # After a kill -9 the kernel closes an io_uring process's sockets asynchronously (the
    # ring's teardown runs in a worker): give the old listener a few seconds to go.
    local tries=0
    while (exec 3<>/dev/tcp/127.0.0.1/19879) 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -ge 50 ]; then
            echo "something already listens on 19879" >&2
            return 1
        fi
        sleep 0.1
    done
    "$bin/appliance" run --config "$cfg" --run-for 900 --histograms "$OUT/internal-$name.txt" \
        >"$OUT/appliance-$name.log" 2>&1 &
    app_pid=$!
    for _ in $(seq 300); do
        grep -q "ready: FIX on" "$OUT/appliance-$name.log" 2>/dev/null && return 0
        kill -0 "$app_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "appliance did not start: $(tail -3 "$OUT/appliance-$name.log")" >&2
    return 1
}
stop_app() {
    kill -TERM "$app_pid"
    wait "$app_pid" || true
    app_pid=
}
trap '[ -n "$app_pid" ] && kill -9 "$app_pid" 2>/dev/null || true' EXIT
bench() { # bench TAG args...: one run, its JSON line tagged and appended
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
closed() { # closed TAG PROTOCOL: closed loop, 5 s, the spinning-server floor right after
    bench "$1" latency --protocol "$2" --mode closed --duration 5 --floor --floor-spin
}

if want threading; then
    for mode in auto dedicated; do
        cfg=$(config "threading-$mode" -e "s/^threading = \"auto\"/threading = \"$mode\"/")
        start_app "threading-$mode" "$cfg"
        grep -o "threading: [a-z]* ([^)]*)" "$OUT/appliance-threading-$mode.log" | head -1
        for i in $(seq "$runs"); do
            closed "$mode-binary-closed" binary
            closed "$mode-fix-closed" fix
            bench "$mode-binary-open-20000" latency --protocol binary --rate 20000 --duration 10 --floor --floor-spin
        done
        stop_app
    done
fi

if want throughput; then
    for ack in written off; do
        start_app "throughput-$ack" "$(many "throughput-$ack" "$ack")"
        bench "pipelined-binary-$ack" latency --protocol binary --mode pipelined --window 256 --connections 4 --mix passive --duration 5
        bench "pipelined-fix-$ack" latency --protocol fix --mode pipelined --window 256 --connections 4 --mix passive --duration 5
        stop_app
    done
fi

if want journal; then
    for i in $(seq "$runs"); do
        for ack in off written fsync; do
            start_app "ack-$ack" "$(config "ack-$ack" -e "s/^ack = \"written\"/ack = \"$ack\"/")"
            closed "ack-$ack-binary" binary
            closed "ack-$ack-fix" fix
            stop_app
        done
    done
    for placement in thread duty-cycle; do
        cfg=$(config "placement-$placement" -e 's/^threading = "auto"/threading = "shared"/' \
            -e "s/^placement = \"auto\"/placement = \"$placement\"/")
        start_app "placement-$placement" "$cfg"
        for i in $(seq "$runs"); do
            closed "placement-$placement-binary" binary
        done
        bench "placement-$placement-pipelined" latency --protocol binary --mode pipelined --window 256 --connections 2 --mix passive --duration 5
        stop_app
    done
fi

if want feed; then
    for i in $(seq "$runs"); do
        for md in off on; do
            cfg=$(config "feed-$md" -e 's/127.0.0.1:9200/127.0.0.1:19200/; s/127.0.0.1:9201/127.0.0.1:19201/')
            if [ "$md" = off ]; then
                sed -i '/^\[market_data\]/,/^\[/ s/^enabled = true/enabled = false/' "$cfg"
            fi
            start_app "feed-$md" "$cfg"
            closed "feed-$md-binary-closed" binary
            bench "feed-$md-binary-open-20000" latency --protocol binary --rate 20000 --duration 10
            m0=$(curl -s 127.0.0.1:19100/metrics | awk '/^appliance_md_messages_total/ {print $2}')
            bench "feed-$md-binary-pipelined" latency --protocol binary --mode pipelined --window 256 --duration 5
            m1=$(curl -s 127.0.0.1:19100/metrics | awk '/^appliance_md_messages_total/ {print $2}')
            stop_app
            if [ "$md" = on ]; then
                echo "run $i: feed messages during the pipelined run: $m0 -> $m1" | tee -a "$OUT/feed.txt"
                grep -o "market data: session.*" "$OUT/appliance-feed-on.log" | sed "s/^/run $i: /" | tee -a "$OUT/feed.txt"
            fi
        done
    done
fi

if want recovery; then
    rec=$OUT/recovery.txt
    : >"$rec"
    # Capacity for 1.2 M orders, no cancel-on-disconnect (the orders must stay).
    cfg=$(config recovery -e 's/^max_orders = 1_000_000/max_orders = 1_200_000/' \
        -e 's/^max_orders = 262_144/max_orders = 1_200_000/' \
        -e 's/^cancel_on_disconnect = true/cancel_on_disconnect = false/')
    start_app recovery "$cfg"
    bench "recovery-fill" latency --protocol binary --mode pipelined --window 256 --connections 2 \
        --mix rest --max-live 600000 --orders 1000000 --duration 120 --warmup 0
    stop_app
    grep -h "state hash at shutdown" "$OUT/appliance-recovery.log" | sed 's/.*INFO[^:]*: //' | tee -a "$rec"
    find "$OUT/journal-recovery/snapshots" -name "*.snap" -printf "%s bytes %f\n" | tee -a "$rec"
    # Snapshot only (the clean stop's), then 100,000 more orders and SIGKILL.
    start_app recovery-snapshot "$cfg"
    grep -h "recovered from" "$OUT/appliance-recovery-snapshot.log" | sed 's/.*INFO[^:]*: /snapshot only: /' | tee -a "$rec"
    "$bin/bench" latency --protocol binary --port 19879 --mode pipelined --window 256 --connections 2 \
        --mix rest --max-live 600000 --orders 100000 --duration 60 --warmup 0 --seed 7 --plain >/dev/null
    sleep 0.5
    kill -9 "$app_pid"
    wait "$app_pid" 2>/dev/null || true
    app_pid=
    for i in $(seq 3); do
        start_app "recovery-tail-$i" "$cfg"
        grep -h "recovered from" "$OUT/appliance-recovery-tail-$i.log" | sed 's/.*INFO[^:]*: /snapshot + tail: /' | tee -a "$rec"
        kill -9 "$app_pid"
        wait "$app_pid" 2>/dev/null || true
        app_pid=
    done
fi
trap - EXIT
echo "results: $results"
python3 bench/targets-table.py "$results"

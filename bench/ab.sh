#!/usr/bin/env bash
# A/B of two appliance builds in one sitting, interleaved, with one load generator: the
# closed-loop and open-loop (20,000/s) binary round trips of each build on its own embedded
# default configuration (ports moved to 19878/19879/19100, journal in a fresh directory).
#
#   bench/ab.sh BASE_DIR NEW_DIR [RUNS]
#       BASE_DIR, NEW_DIR: directories holding an `appliance` binary (e.g. a worktree's
#       target/release); the load generator is NEW_DIR/bench.
#   BASE_SED / NEW_SED: an extra sed expression for that side's configuration (e.g. the same
#       build twice, NEW_SED='s/^audit_order_events = "info"/audit_order_events = "off"/').
#
# JSON lines go to $OUT/ab.jsonl tagged `base-...` / `new-...`; a table of medians at the end.
set -euo pipefail
base=$1
new=$2
runs=${3:-3}
OUT=${OUT:-out/ab}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
results=$OUT/ab.jsonl
: >"$results"
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true' EXIT

run_one() { # run_one TAG DIR SED
    local tag=$1 dir=$2 extra_sed=${3:-} cfg=$OUT/$1.toml
    rm -rf "$OUT/journal-$tag"
    "$dir/appliance" --print-default-config |
        sed -e 's/127.0.0.1:9878/127.0.0.1:19878/; s/127.0.0.1:9879/127.0.0.1:19879/; s/127.0.0.1:9100/127.0.0.1:19100/' \
            -e 's/127.0.0.1:9200/127.0.0.1:19200/; s/127.0.0.1:9201/127.0.0.1:19201/' \
            -e "s|^dir = \"appliance-data\"|dir = \"$OUT/journal-$tag\"|" -e "${extra_sed:-s/^\$//}" >"$cfg"
    while (exec 3<>/dev/tcp/127.0.0.1/19879) 2>/dev/null; do sleep 0.1; done
    "$dir/appliance" run --config "$cfg" --run-for 600 >"$OUT/$tag.log" 2>&1 &
    pid=$!
    for _ in $(seq 300); do
        grep -q "ready: FIX on" "$OUT/$tag.log" && break
        sleep 0.1
    done
    for mode in closed open; do
        local extra=(--mode closed --duration 5)
        [ "$mode" = open ] && extra=(--rate 20000 --duration 10)
        "$new/bench" latency --protocol binary "${extra[@]}" --port 19879 --json --plain |
            python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d["tag"]=sys.argv[1]; print(json.dumps(d))' "$tag-$mode" |
            tee -a "$results" | cut -c1-160
    done
    kill -TERM "$pid"
    wait "$pid" || true
    pid=
    rm -rf "$OUT/journal-$tag"
}

for i in $(seq "$runs"); do
    run_one "base-$i" "$base" "${BASE_SED:-}"
    run_one "new-$i" "$new" "${NEW_SED:-}"
done

python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(build, mode, key):
    v = [r[key] / 1e3 for r in rows if r["tag"].startswith(build + "-") and r["tag"].endswith("-" + mode)]
    return statistics.median(v), v
print("| figure | base (runs, us) | new (runs, us) | new / base (medians) |")
print("| --- | --- | --- | --- |")
for mode in ("closed", "open"):
    for key in ("p50_ns", "p99_ns"):
        b, bv = med("base", mode, key)
        n, nv = med("new", mode, key)
        fmt = lambda v: " / ".join(f"{x:.1f}" for x in v)
        print(f"| {mode} {key[:-3]} | {fmt(bv)} | {fmt(nv)} | {n / b:.2f} |")
EOF

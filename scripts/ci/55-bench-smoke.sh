#!/usr/bin/env bash
# Bench smoke: the appliance on its embedded default configuration (no flags but --run-for),
# `bench latency` for a few seconds on both protocols (open and closed loop), `bench floor`,
# all with --json and reports under out/bench/; then checks that every JSON line parses and
# carries the required keys, that orders were answered, and that the .hgrm/.svg reports exist.
# Built with the `ci` profile (thin LTO): these are correctness checks of the tool, not figures.
set -euo pipefail
source scripts/ci/lib.sh
need_apt python3 python3

cargo build --profile ci --locked -p appliance -p bench
bin=${CARGO_TARGET_DIR:-target}/ci
out=out/bench
rm -rf "$out"
mkdir -p "$out"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# The appliance and the bench with no flags: default configuration, default ports. If another
# process already holds those ports (a developer's appliance), the same configuration moved to
# 19878/19879/19100 is used instead, so the smoke never measures someone else's process.
cfg=() fix_port=() bin_port=() fport=9878 bport=9879
if listening 9878 || listening 9879 || listening 9100; then
    echo "bench-smoke: the default ports are taken; using the default configuration on 19878/19879"
    "$bin/appliance" --print-default-config |
        sed 's/127.0.0.1:9878/127.0.0.1:19878/; s/127.0.0.1:9879/127.0.0.1:19879/; s/127.0.0.1:9100/127.0.0.1:19100/' \
            >"$out/default-19xxx.toml"
    cfg=(--config "$out/default-19xxx.toml") fix_port=(--port 19878) bin_port=(--port 19879)
    fport=19878 bport=19879
fi
"$bin/appliance" run "${cfg[@]}" --run-for 90 --histograms "$out/appliance-histograms.txt" \
    >"$out/appliance.log" 2>&1 &
app=$!
trap 'kill "$app" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    listening "$bport" && listening "$fport" && break
    kill -0 "$app" 2>/dev/null || { cat "$out/appliance.log"; exit 1; }
    sleep 0.1
done

common=(--duration 3 --warmup 0.5 --json --plain --out "$out")
"$bin/bench" latency "${bin_port[@]}" --protocol binary --rate 2000 "${common[@]}" | tee "$out/binary-open.jsonl"
"$bin/bench" latency "${fix_port[@]}" --protocol fix --rate 2000 "${common[@]}" | tee "$out/fix-open.jsonl"
"$bin/bench" latency "${bin_port[@]}" --protocol binary --mode closed --floor "${common[@]}" | tee "$out/binary-closed.jsonl"
"$bin/bench" latency "${fix_port[@]}" --protocol fix --mode closed "${common[@]}" | tee "$out/fix-closed.jsonl"
"$bin/bench" floor --duration 2 --warmup 0.5 --json --plain --out "$out" | tee "$out/floor.jsonl"
"$bin/bench" plot --out "$out/overlay.svg" \
    "binary=$out/binary-open-2000.hgrm" "fix=$out/fix-open-2000.hgrm" "floor=$out/floor-48-64.hgrm"

kill -INT "$app"
wait "$app" || true
trap - EXIT

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
keys = ["protocol", "connections", "requested_rate", "achieved_rate", "orders",
        "p50_ns", "p90_ns", "p99_ns", "p999_ns", "p9999_ns", "max_ns"]
for name in ["binary-open", "fix-open", "binary-closed", "fix-closed", "floor"]:
    lines = [l for l in open(os.path.join(out, name + ".jsonl")) if l.strip()]
    assert len(lines) == 1, f"{name}: expected one JSON line, got {len(lines)}"
    s = json.loads(lines[0])
    missing = [k for k in keys if k not in s]
    assert not missing, f"{name}: missing keys {missing}"
    assert s["orders"] > 0, f"{name}: no orders recorded"
    assert s["unanswered"] == 0, f"{name}: {s['unanswered']} orders unanswered"
    assert not s.get("errors"), f"{name}: {s['errors']}"
    assert 0 < s["p50_ns"] <= s["p99_ns"] <= s["max_ns"], f"{name}: percentiles out of order"
    if s["requested_rate"]:
        assert s["achieved_rate"] > 0.8 * s["requested_rate"], f"{name}: achieved {s['achieved_rate']}"
    print(f"{name}: {s['orders']} orders, p50 {s['p50_ns']/1000:.1f} us, p99 {s['p99_ns']/1000:.1f} us")
closed = json.loads(open(os.path.join(out, "binary-closed.jsonl")).read())
assert closed["floor"]["p50_ns"] > 0 and closed["p50_floor_ratio"] > 0
for f in ["binary-open-2000.hgrm", "fix-open-2000.hgrm", "floor-48-64.hgrm"]:
    rows = [l.split() for l in open(os.path.join(out, f)) if l.strip() and l.strip()[0].isdigit()]
    assert rows and float(rows[-1][1]) == 1.0, f"{f}: no 100% row"
for f in ["binary-open-2000.svg", "overlay.svg"]:
    assert open(os.path.join(out, f)).read().startswith("<svg"), f
hist = open(os.path.join(out, "appliance-histograms.txt")).read()
assert "wire_to_wire" in hist, "appliance latency summary lacks wire_to_wire"
print("bench smoke: reports parse")
PY

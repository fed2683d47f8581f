#!/usr/bin/env bash
# Telemetry cost (docs/benchmarks.md, "Telemetry cost"): the appliance on its embedded default
# configuration (moved to ports 19878/19879/19100) with the exporter enabled and disabled in
# alternating runs, each loaded by `bench latency` (binary, open loop); compares the internal
# p50 of every stage from `appliance run --histograms`.
#
#   cargo build --release -p appliance -p bench
#   BIN=target/release RATE=20000 PAIRS=8 bench/telemetry-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release}
rate=${RATE:-20000}
pairs=${PAIRS:-8}
out=${OUT:-out/telemetry-cost-$rate}
rm -rf "$out"
mkdir -p "$out"
"$bin/appliance" --print-default-config |
    sed 's/127.0.0.1:9878/127.0.0.1:19878/; s/127.0.0.1:9879/127.0.0.1:19879/; s/127.0.0.1:9100/127.0.0.1:19100/' \
        >"$out/on.toml"
python3 - "$out" <<'PY'
import sys
d = sys.argv[1]
s = open(d + "/on.toml").read()
i = s.index("[exporter]")
j = s.index("enabled = true", i)
open(d + "/off.toml", "w").write(s[:j] + "enabled = false" + s[j + len("enabled = true"):])
PY
for i in $(seq "$pairs"); do
    for mode in on off; do
        "$bin/appliance" run --config "$out/$mode.toml" --run-for 30 --histograms "$out/$mode-$i.txt" \
            >"$out/$mode-$i.log" 2>&1 &
        pid=$!
        for _ in $(seq 100); do
            (exec 3<>/dev/tcp/127.0.0.1/19879) 2>/dev/null && break
            sleep 0.1
        done
        "$bin/bench" latency --rate "$rate" --duration 5 --warmup 1 --port 19879 --plain --json \
            >"$out/$mode-$i.json"
        kill -INT "$pid"
        wait "$pid"
    done
done
python3 - "$out" "$pairs" <<'PY'
import statistics
import sys
d, n = sys.argv[1], int(sys.argv[2])
def p50(f, stage):
    for line in open(f):
        if line.startswith(stage + " "):
            return int(line.split()[2])
    raise SystemExit(f"{f}: no {stage} row")
print("stage          on p50 ns   off p50 ns   on/off (medians)   median of pair ratios")
for stage in ["ingress", "ring", "engine", "egress", "wire_to_wire"]:
    on = [p50(f"{d}/on-{i}.txt", stage) for i in range(1, n + 1)]
    off = [p50(f"{d}/off-{i}.txt", stage) for i in range(1, n + 1)]
    pair = statistics.median(a / b for a, b in zip(on, off))
    print(f"{stage:13} {statistics.median(on):>10.0f} {statistics.median(off):>12.0f}"
          f" {statistics.median(on) / statistics.median(off):>18.3f} {pair:>23.3f}")
    print(f"{'':13} on {on}\n{'':13} off {off}")
PY

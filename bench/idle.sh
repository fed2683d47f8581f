#!/usr/bin/env bash
# What an idle appliance costs the host: CPU share and system calls per second of the
# appliance on its embedded default configuration with no client connected.
#
#   BIN=target/release bench/idle.sh [SECONDS]
#
# CPU: utime+stime ticks from /proc/PID/stat over SECONDS (no tracer attached). System calls:
# `strace -c -f` attached for SECONDS in a second window (strace slows the traced process, so
# the two are measured apart). Needs strace (apt-get install strace).
set -euo pipefail
secs=${1:-10}
bin=${BIN:-target/release}
command -v strace >/dev/null || { echo "idle.sh: strace is missing (apt-get install strace)" >&2; exit 1; }
"$bin/appliance" run --run-for $((secs * 2 + 10)) >/tmp/idle-appliance.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
sleep 3
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(ticks)
sleep "$secs"
t1=$(ticks)
cpu=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.3f", 100 * d / hz / s }')
timeout -s INT "$secs" strace -f -c -p "$pid" -o /tmp/idle-strace.txt 2>/dev/null || true
calls=$(awk '/^100.00/ {print $4}' /tmp/idle-strace.txt)
calls=${calls:-0}
rate=$(awk -v c="$calls" -v s="$secs" 'BEGIN { printf "%.1f", c / s }')
echo "idle over ${secs} s: cpu ${cpu}% of one CPU, ${rate} syscalls/s (${calls} in ${secs} s)"
grep -E '^\s+[0-9]' /tmp/idle-strace.txt | sort -k4 -n -r | head -8
echo "threading: $(grep -o 'threading: .*' /tmp/idle-appliance.log | head -1)"

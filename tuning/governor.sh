#!/usr/bin/env bash
# Set the CPU frequency governor (and energy/performance preference) on the given cores.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"

usage() {
    cat <<'USAGE'
Usage: governor.sh [--governor NAME] [--cores LIST|all] [--apply]

  --governor NAME  default: $GOVERNOR, else performance
  --cores LIST     cores to set, e.g. 2-5 (default: all online cores)
  --apply          change the system (default: dry run)
  --help           this text

Why: the `performance` governor keeps cores at their highest P-state, so a core that was idle
does not spend tens of microseconds ramping up when an order arrives.

Drivers:
  intel_pstate (active mode) offers only `performance` and `powersave`; the script also sets
  energy_performance_preference=performance where the file exists. For a fixed frequency boot
  with intel_pstate=passive (governors of acpi-cpufreq style) or pin min=max frequency.
  amd-pstate (amd_pstate=active on Linux 6.3+, EPP mode) behaves like intel_pstate active:
  performance governor plus EPP performance. With amd_pstate=passive or acpi-cpufreq all the
  classic governors exist.
  No /sys/devices/system/cpu/cpu*/cpufreq (common in VMs): the hypervisor or firmware owns the
  frequency; nothing to do here, and the script says so.

Not persistent: appliance-tuning.service re-applies it at every boot.
USAGE
}

governor=${GOVERNOR:-performance}
cores=all
while [ "$#" -gt 0 ]; do
    parse_common "$1" && { shift; continue; }
    case $1 in
    --governor) governor=${2:?--governor needs a name}; shift 2 ;;
    --cores) cores=${2:?--cores needs a list}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
need_root

if [ "$cores" = all ]; then
    cpu_list=$(online_cpus)
else
    cpu_list=$(expand_cpulist "$cores")
fi

seen=0
for c in $cpu_list; do
    d=$ROOT/sys/devices/system/cpu/cpu$c/cpufreq
    [ -r "$d/scaling_governor" ] || continue
    seen=$((seen + 1))
    if [ -r "$d/scaling_available_governors" ] &&
        ! grep -qw -- "$governor" "$d/scaling_available_governors"; then
        report skip "$d/scaling_governor" "$governor not offered (available: $(<"$d/scaling_available_governors"))"
        continue
    fi
    set_value "$d/scaling_governor" "$governor"
    if [ "$governor" = performance ] && [ -r "$d/energy_performance_preference" ]; then
        set_value "$d/energy_performance_preference" performance
    fi
done
if [ "$seen" = 0 ]; then
    echo "skip   no cpufreq interface for cores $(compress_cpus "$cpu_list") (VM or firmware-managed frequency)"
fi
summary

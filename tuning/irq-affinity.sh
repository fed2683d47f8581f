#!/usr/bin/env bash
# Move device IRQs off the isolated cores onto the housekeeping cores.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"

usage() {
    cat <<'USAGE'
Usage: irq-affinity.sh [--isolated LIST] [--apply]

  --isolated LIST  cores to keep IRQs off, e.g. 2-5 (default: $ISOLATED_CPUS, else the
                   kernel's /sys/devices/system/cpu/isolated)
  --apply          change the system (default: dry run)
  --help           this text

Every IRQ allowed on an isolated core is narrowed to the cores it may use outside the isolated
set (or all housekeeping cores when that leaves none), and new IRQs default to the housekeeping
cores. Kernel-managed IRQs (multi-queue NVMe/NIC vectors) refuse the change: they are listed
as `fail`; isolcpus=managed_irq,... on the kernel command line keeps them off isolated cores.

Why: an interrupt on an engine core costs microseconds of jitter, and its softirq work more.
Stop irqbalance or ban the isolated cores in it (IRQBALANCE_BANNED_CPULIST), or it moves
them back. Not persistent: appliance-tuning.service re-applies it at every boot.
USAGE
}

isolated=${ISOLATED_CPUS:-}
while [ "$#" -gt 0 ]; do
    parse_common "$1" && { shift; continue; }
    case $1 in
    --isolated) isolated=${2:?--isolated needs a list}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -n "$isolated" ] || isolated=$(kernel_isolated)
if [ -z "$isolated" ]; then
    echo "skip   no isolated cores (none given, none in /sys/devices/system/cpu/isolated)"
    summary
    exit 0
fi
need_root

iso=$(expand_cpulist "$isolated")
online=$(online_cpus)
house=$(cpus_minus "$online" "$iso")
[ -n "$house" ] || die "isolating $isolated leaves no housekeeping core"
house_list=$(compress_cpus "$house")
echo "note   isolated $(compress_cpus "$iso"), housekeeping $house_list"

# /proc/irq/default_smp_affinity is a hex mask (comma-separated 32-bit words, as the kernel
# prints it); compute the housekeeping mask and compare numerically-insensitive as hex.
mask_of() {
    local c words=() w i hex=""
    for c in $1; do
        i=$((c / 32))
        w=${words[i]:-0}
        words[i]=$((w | (1 << (c % 32))))
    done
    local top=$((${#words[@]} - 1))
    for ((i = top; i >= 0; i--)); do
        if [ "$i" = "$top" ]; then
            hex+=$(printf '%x' "${words[i]:-0}")
        else
            hex+=$(printf ',%08x' "${words[i]:-0}")
        fi
    done
    printf '%s\n' "$hex"
}

default=$ROOT/proc/irq/default_smp_affinity
if [ -r "$default" ]; then
    cur=$(<"$default")
    want=$(mask_of "$house")
    # The kernel zero-pads; compare without leading zeros.
    cur_n=$(printf '%s' "$cur" | sed 's/^[0,]*//')
    if [ "$cur_n" = "$want" ]; then
        report ok "$default" "$cur"
    else
        set_value "$default" "$want" "$cur"
    fi
fi

# Kernel-managed vectors (multi-queue virtio/NVMe/NIC) and some per-CPU IRQs refuse affinity
# changes from user space; that is expected, not a failure of this script.
REFUSAL_NOTE="kernel-managed IRQ; isolcpus=managed_irq,... keeps it off isolated cores at boot"
count=0
for d in "$ROOT"/proc/irq/[0-9]*; do
    [ -r "$d/smp_affinity_list" ] || continue
    count=$((count + 1))
    cur=$(<"$d/smp_affinity_list")
    allowed=$(expand_cpulist "$cur")
    keep=$(cpus_minus "$allowed" "$iso")
    if [ "$keep" = "$allowed" ]; then
        continue # already off the isolated cores: stay quiet, there may be hundreds
    fi
    [ -n "$keep" ] || keep=$house
    set_value "$d/smp_affinity_list" "$(compress_cpus "$keep")" "$cur"
done
echo "note   $count IRQs examined; IRQs already off the isolated cores are not listed"
summary

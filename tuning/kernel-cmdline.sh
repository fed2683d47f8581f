#!/usr/bin/env bash
# Generate (and optionally install for GRUB) the kernel command line for an isolated,
# tickless core set.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"

usage() {
    cat <<'USAGE'
Usage: kernel-cmdline.sh --isolated LIST [--housekeeping LIST] [--hugepages N]
                         [--cstates] [--apply]

Prints the kernel parameters that isolate LIST for the appliance's pinned threads, what each
buys, and how to install them with GRUB. With --apply, writes them to
/etc/default/grub.d/appliance.cfg and runs update-grub; they take effect at the next boot.

  --isolated LIST      cores for engine and gateway threads, e.g. 2-5
  --housekeeping LIST  cores for everything else (default: online cores minus LIST)
  --hugepages N        also reserve N 2 MiB hugepages at boot (never fragmented)
  --cstates            also cap C-states at C1 (intel_idle.max_cstate=1 processor.max_cstate=1)
  --apply              install for GRUB (default: print only)
  --help               this text

CPU frequency drivers (choose on the command line, see governor.sh --help):
  Intel: intel_pstate (default, active) + performance governor + EPP performance, or
         intel_pstate=passive to use the classic governors; intel_pstate=disable falls back
         to acpi-cpufreq.
  AMD:   amd_pstate=active (Linux 6.3+, EPP) + performance governor, or amd_pstate=passive;
         older kernels use acpi-cpufreq.
USAGE
}

isolated=${ISOLATED_CPUS:-}
house=""
hugepages=""
cstates=0
while [ "$#" -gt 0 ]; do
    parse_common "$1" && { shift; continue; }
    case $1 in
    --isolated) isolated=${2:?--isolated needs a list}; shift 2 ;;
    --housekeeping) house=${2:?--housekeeping needs a list}; shift 2 ;;
    --hugepages) hugepages=${2:?--hugepages needs a number}; shift 2 ;;
    --cstates) cstates=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -n "$isolated" ] || { usage >&2; die "--isolated LIST is required"; }
iso=$(expand_cpulist "$isolated")
iso_list=$(compress_cpus "$iso")
if [ -n "$house" ]; then
    house_list=$(compress_cpus "$(expand_cpulist "$house")")
else
    house_list=$(compress_cpus "$(cpus_minus "$(online_cpus)" "$iso")")
fi
[ -n "$house_list" ] || die "isolating $iso_list leaves no housekeeping core"
if [ -n "$(cpus_minus "$iso" "$(cpus_minus "$iso" "$(expand_cpulist "$house_list")")")" ]; then
    die "housekeeping $house_list overlaps isolated $iso_list"
fi
[ -z "$hugepages" ] || [[ $hugepages =~ ^[0-9]+$ ]] || die "bad --hugepages $hugepages"

params="isolcpus=managed_irq,domain,$iso_list nohz_full=$iso_list rcu_nocbs=$iso_list"
params+=" irqaffinity=$house_list"
[ -n "$hugepages" ] && params+=" default_hugepagesz=2M hugepagesz=2M hugepages=$hugepages"
[ "$cstates" = 1 ] && params+=" intel_idle.max_cstate=1 processor.max_cstate=1"

explain() { printf '  %-44s %s\n' "$1" "$2"; }
echo "$params"
echo
explain "isolcpus=managed_irq,domain,$iso_list" "no task is placed on these cores unless pinned there;"
explain "" "kernel-managed IRQ vectors avoid them where possible"
explain "nohz_full=$iso_list" "the periodic tick stops while one task runs on a core"
explain "rcu_nocbs=$iso_list" "RCU callbacks run on housekeeping cores (nohz_full implies it)"
explain "irqaffinity=$house_list" "IRQs start on the housekeeping cores"
[ -n "$hugepages" ] && explain "hugepages=$hugepages" "$hugepages x 2 MiB reserved at boot, before memory fragments"
[ "$cstates" = 1 ] && explain "intel_idle.max_cstate=1 processor.max_cstate=1" "no idle deeper than C1: ~1 us wake-up instead of ~100 us"
cat <<'GRUB'

Install with GRUB (Debian/Ubuntu):
  1. kernel-cmdline.sh --isolated LIST --apply writes /etc/default/grub.d/appliance.cfg
     (or append the line above to GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub);
  2. update-grub (done by --apply), reboot;
  3. cat /proc/cmdline, then `appliance check-host`: cpu.isolation, cpu.nohz_full and
     cpu.rcu_nocbs report ok.
GRUB

cfg=$ROOT/etc/default/grub.d/appliance.cfg
content="# Written by kernel-cmdline.sh: CPU isolation for the matching appliance.
GRUB_CMDLINE_LINUX_DEFAULT=\"\$GRUB_CMDLINE_LINUX_DEFAULT $params\""
echo
if [ -r "$cfg" ] && [ "$(<"$cfg")" = "$content" ]; then
    report ok "$cfg" "already holds these parameters"
    summary
    exit 0
fi
CHANGES=$((CHANGES + 1))
if [ "$APPLY" = 0 ]; then
    report would "$cfg" "write GRUB_CMDLINE_LINUX_DEFAULT+=\" $params\", then update-grub"
    summary
    exit 0
fi
need_root
mkdir -p "$(dirname "$cfg")"
printf '%s\n' "$content" >"$cfg"
report set "$cfg" "GRUB_CMDLINE_LINUX_DEFAULT+=\" $params\""
if [ -z "$ROOT" ]; then
    if command -v update-grub >/dev/null 2>&1; then
        update-grub
    else
        echo "note   update-grub not found: regenerate the GRUB configuration yourself (grub2-mkconfig -o ...)"
    fi
fi
echo "note   takes effect at the next boot"
summary

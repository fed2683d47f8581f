#!/usr/bin/env bash
# Reserve 2 MiB hugepages for the appliance's arenas, rings and buffers.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"

usage() {
    cat <<'USAGE'
Usage: hugepages.sh [--pages N | --bytes SIZE] [--node N] [--exact] [--apply]

Makes sure at least N 2 MiB hugepages are reserved (vm.nr_hugepages), so the appliance maps
its memory with MAP_HUGETLB instead of falling back to transparent or 4 KiB pages.

  --pages N     hugepages wanted (default: $HUGEPAGES, as set in /etc/appliance/tuning.env)
  --bytes SIZE  or the memory wanted: 512M, 3G, 1073741824 (rounded up to 2 MiB pages)
  --node N      reserve on NUMA node N only (the node of the engine cores; see check-host)
  --exact       set exactly N, releasing surplus pages (default: only ever raise)
  --apply       change the system (default: dry run, print what would change)
  --help        this text

`appliance check-host` reports how many pages the configuration needs (mem.hugepages.2m).
Reserving at run time can fall short on a fragmented host: the script reads back what the kernel
granted and fails if it is less. Boot-time reservation (hugepages=N on the kernel command line,
see kernel-cmdline.sh) never fragments.
USAGE
}

pages=${HUGEPAGES:-}
node=""
exact=0
while [ "$#" -gt 0 ]; do
    parse_common "$1" && { shift; continue; }
    case $1 in
    --pages) pages=${2:?--pages needs a number}; shift 2 ;;
    --bytes)
        size=${2:?--bytes needs a size}
        case $size in
        *[Gg]) bytes=$((${size%[Gg]} * 1024 * 1024 * 1024)) ;;
        *[Mm]) bytes=$((${size%[Mm]} * 1024 * 1024)) ;;
        *[!0-9]*) die "bad size $size (want e.g. 512M, 3G or bytes)" ;;
        *) bytes=$size ;;
        esac
        pages=$(((bytes + 2097151) / 2097152))
        shift 2
        ;;
    --node) node=${2:?--node needs a number}; shift 2 ;;
    --exact) exact=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -n "$pages" ] || { usage >&2; die "say how many pages: --pages N, --bytes SIZE or HUGEPAGES="; }
[[ $pages =~ ^[0-9]+$ ]] || die "bad page count $pages"
need_root

if [ -n "$node" ]; then
    file=$ROOT/sys/devices/system/node/node$node/hugepages/hugepages-2048kB/nr_hugepages
else
    file=$ROOT/proc/sys/vm/nr_hugepages
fi
[ -r "$file" ] || die "${file#"$ROOT"} missing: kernel without hugetlb support, or no NUMA node $node"
current=$(<"$file")
target=$pages
if [ "$exact" = 0 ] && [ "$current" -ge "$pages" ]; then
    target=$current
fi
set_value "$file" "$target" "$current"
if [ "$APPLY" = 1 ] && [ "$target" != "$current" ]; then
    granted=$(<"$file")
    if [ "$granted" -lt "$target" ]; then
        report fail "$file" "kernel granted $granted of $target pages (memory fragmented: reserve at boot with hugepages=$target)"
        FAILURES=$((FAILURES + 1))
    fi
fi
summary

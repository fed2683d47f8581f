#!/usr/bin/env bash
# Set the transparent hugepage mode (and optionally defrag policy).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$(readlink -f "$0")")/lib.sh"

usage() {
    cat <<'USAGE'
Usage: thp.sh [--mode always|madvise|never] [--defrag MODE] [--apply]

  --mode MODE    THP mode (default: $THP_MODE, else madvise). `madvise` gives THP to the
                 appliance's arenas (it asks with MADV_HUGEPAGE) without making every other
                 process stall on compaction, as `always` can.
  --defrag MODE  /sys/kernel/mm/transparent_hugepage/defrag (always, defer, defer+madvise,
                 madvise, never); left alone unless given. `madvise` (the kernel default)
                 compacts synchronously only for advised regions: what the appliance wants.
  --apply        change the system (default: dry run)
  --help         this text

Not persistent: appliance-tuning.service re-applies it at every boot, or put
transparent_hugepage=madvise on the kernel command line.
USAGE
}

mode=${THP_MODE:-madvise}
defrag=""
while [ "$#" -gt 0 ]; do
    parse_common "$1" && { shift; continue; }
    case $1 in
    --mode) mode=${2:?--mode needs a value}; shift 2 ;;
    --defrag) defrag=${2:?--defrag needs a value}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
case $mode in always | madvise | never) ;; *) die "bad mode $mode" ;; esac
need_root

# The files read "always [madvise] never"; the bracketed word is the current choice.
selected() {
    local raw
    raw=$(<"$1")
    raw=${raw#*[}
    printf '%s\n' "${raw%%]*}"
}

dir=$ROOT/sys/kernel/mm/transparent_hugepage
if [ ! -r "$dir/enabled" ]; then
    report skip "$dir/enabled" "kernel without transparent hugepages"
else
    set_value "$dir/enabled" "$mode" "$(selected "$dir/enabled")"
fi
if [ -n "$defrag" ]; then
    if [ -r "$dir/defrag" ]; then
        set_value "$dir/defrag" "$defrag" "$(selected "$dir/defrag")"
    else
        report skip "$dir/defrag" "missing"
    fi
fi
summary

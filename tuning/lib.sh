# shellcheck shell=bash
# Shared helpers for the tuning scripts. Sourced, never run.
#
# Conventions every script follows:
#   - dry run by default: print what would change; --apply changes it;
#   - idempotent: a value already in place is reported as `ok` and not rewritten;
#   - TUNING_ROOT (default empty) prefixes every /proc and /sys path, so the CI step and the
#     tests run the scripts against a fake tree;
#   - one line per setting: `ok`, `would`, `set`, `skip` or `fail`, then a summary line.

ROOT=${TUNING_ROOT:-}
APPLY=0
# When set, a write the kernel refuses is reported as `skip` with this note instead of failing.
REFUSAL_NOTE=""
CHANGES=0
FAILURES=0

die() {
    echo "error: $*" >&2
    exit 2
}

# report WORD PATH DETAIL: one aligned line; paths are shown without the test root.
report() {
    printf '%-6s %s%s\n' "$1" "${2#"$ROOT"}" "${3:+: $3}"
}

# set_value PATH VALUE [CURRENT]: write VALUE to PATH unless CURRENT (default: the file's
# contents) already equals it. Honours --apply; counts changes and failures.
set_value() {
    local path=$1 value=$2 current
    if [ "$#" -ge 3 ]; then
        current=$3
    elif [ -r "$path" ]; then
        current=$(<"$path")
    else
        report skip "$path" "missing"
        return 0
    fi
    if [ "$current" = "$value" ]; then
        report ok "$path" "$value"
        return 0
    fi
    CHANGES=$((CHANGES + 1))
    if [ "$APPLY" = 0 ]; then
        report would "$path" "$current -> $value"
        return 0
    fi
    if printf '%s\n' "$value" 2>/dev/null >"$path"; then
        report set "$path" "$current -> $value"
    elif [ -n "$REFUSAL_NOTE" ]; then
        # The caller expects some writes to be refused and says why that is fine.
        CHANGES=$((CHANGES - 1))
        report skip "$path" "kernel refused $value (still $current): $REFUSAL_NOTE"
    else
        FAILURES=$((FAILURES + 1))
        report fail "$path" "kernel refused $value (still $current)"
    fi
}

# summary: the closing line, and the exit status (1 when a write failed).
summary() {
    if [ "$CHANGES" = 0 ]; then
        echo "nothing to change"
    elif [ "$APPLY" = 0 ]; then
        echo "dry run: $CHANGES change(s) would be made; re-run with --apply"
    else
        echo "applied $((CHANGES - FAILURES)) of $CHANGES change(s)"
    fi
    [ "$FAILURES" = 0 ]
}

# expand_cpulist LIST: "0-2,5" -> "0 1 2 5" (dies on anything else).
expand_cpulist() {
    local list=$1 part lo hi out=()
    [ -z "$list" ] && return 0
    local IFS=,
    for part in $list; do
        if [[ $part =~ ^([0-9]+)-([0-9]+)$ ]]; then
            lo=${BASH_REMATCH[1]} hi=${BASH_REMATCH[2]}
            [ "$lo" -le "$hi" ] || die "bad cpu range $part"
            while [ "$lo" -le "$hi" ]; do
                out+=("$lo")
                lo=$((lo + 1))
            done
        elif [[ $part =~ ^[0-9]+$ ]]; then
            out+=("$part")
        else
            die "bad cpu list '$list' (want e.g. 2-5,8)"
        fi
    done
    IFS=' '
    printf '%s\n' "${out[*]}"
}

# compress_cpus "0 1 2 5": -> "0-2,5" (input in any order, duplicates allowed).
compress_cpus() {
    local result="" lo="" prev="" c
    local -a nums
    read -r -a nums <<<"$*"
    [ "${#nums[@]}" = 0 ] && { echo; return 0; }
    for c in $(printf '%s\n' "${nums[@]}" | sort -n | uniq); do
        if [ -n "$lo" ] && [ "$c" -eq $((prev + 1)) ]; then
            prev=$c
            continue
        fi
        [ -n "$lo" ] && result+="${result:+,}$(_cpu_range "$lo" "$prev")"
        lo=$c
        prev=$c
    done
    [ -n "$lo" ] && result+="${result:+,}$(_cpu_range "$lo" "$prev")"
    printf '%s\n' "$result"
}

_cpu_range() {
    if [ "$1" = "$2" ]; then printf '%s' "$1"; else printf '%s-%s' "$1" "$2"; fi
}

# cpus_minus "A B C" "B": CPUs of the first list not in the second (space-separated).
cpus_minus() {
    local c out=()
    for c in $1; do
        case " $2 " in *" $c "*) ;; *) out+=("$c") ;; esac
    done
    printf '%s\n' "${out[*]}"
}

# online_cpus: the online CPUs, space-separated.
online_cpus() {
    local f=$ROOT/sys/devices/system/cpu/online
    [ -r "$f" ] || die "cannot read ${f#"$ROOT"}"
    expand_cpulist "$(<"$f")"
}

# kernel_isolated: the CPUs the kernel isolates (isolcpus=), as a cpulist; may be empty.
kernel_isolated() {
    local f=$ROOT/sys/devices/system/cpu/isolated
    [ -r "$f" ] && tr -d '[:space:]' <"$f"
    return 0
}

# parse_common ARG: handles --apply/--dry-run; returns 1 when ARG is not one of them.
parse_common() {
    case $1 in
    --apply) APPLY=1 ;;
    --dry-run) APPLY=0 ;;
    *) return 1 ;;
    esac
}

# need_root: --apply against the real root needs root.
need_root() {
    if [ "$APPLY" = 1 ] && [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
        die "--apply needs root"
    fi
}

#!/usr/bin/env bash
# Shell scripts pass shellcheck (all of them: tuning/, scripts/, .ci/run), and every tuning
# script's dry run works against this machine's real /proc and /sys without changing anything.
# (Their --apply paths are tested on fake trees by appliance/tests/host_tuning_scripts.rs.)
set -euo pipefail
source scripts/ci/lib.sh
need_apt shellcheck shellcheck

mapfile -t files < <(git ls-files '*.sh' .ci/run | sort)
shellcheck --version | sed -n 2p
shellcheck -x --source-path=SCRIPTDIR "${files[@]}"
echo "shellcheck: ${#files[@]} files clean"

# Dry runs on this host: exit 0, say what they would do, write nothing.
before=$(cat /proc/sys/vm/nr_hugepages /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || true)
online=$(cat /sys/devices/system/cpu/online)
last=${online##*[-,]}
run() {
    local script=$1 out
    shift
    echo "--- tuning/$script $*"
    out=$(env -u HUGEPAGES -u ISOLATED_CPUS -u GOVERNOR -u THP_MODE "tuning/$script" "$@") || {
        printf '%s\n' "$out"
        echo "ci: tuning/$script dry run failed" >&2
        exit 1
    }
    printf '%s\n' "$out"
    if grep -qE '^(set|fail) ' <<<"$out"; then
        echo "ci: tuning/$script changed the system during a dry run" >&2
        exit 1
    fi
    grep -qE '^(nothing to change|dry run: [0-9]+ change)' <<<"$out" || {
        echo "ci: tuning/$script printed no summary line" >&2
        exit 1
    }
}
run hugepages.sh --pages 4
run thp.sh --mode madvise
run governor.sh
if [ "$last" != 0 ]; then
    run irq-affinity.sh --isolated "$last"
    run kernel-cmdline.sh --isolated "$last" --hugepages 64 --cstates
else
    echo "--- single-CPU machine: no core to isolate; irq-affinity.sh and kernel-cmdline.sh skipped"
fi
run apply-runtime.sh --env tuning/tuning.env
after=$(cat /proc/sys/vm/nr_hugepages /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || true)
[ "$before" = "$after" ] || { echo "ci: a dry run changed the host" >&2; exit 1; }
echo "tuning dry runs: ok"

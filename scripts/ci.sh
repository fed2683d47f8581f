#!/usr/bin/env bash
# The one CI script. `.ci/run` calls `scripts/ci.sh all`; the GitHub workflow calls the same
# steps one by one, so local CI and hosted CI cannot drift apart.
#
#   scripts/ci.sh list          the steps, in order
#   scripts/ci.sh all           every step, stopping at the first failure
#   scripts/ci.sh STEP...       the named steps (e.g. `scripts/ci.sh fmt clippy`)
#
# A step is a file scripts/ci/NN-name.sh, run with bash from the repository root. Each step
# installs what it needs itself (see scripts/ci/lib.sh), so any step can run on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

steps() {
    local f
    for f in scripts/ci/[0-9][0-9]-*.sh; do
        f=${f##*/}
        f=${f%.sh}
        printf '%s\n' "${f#*-}"
    done
}

run_step() {
    local name=$1 file
    file=$(compgen -G "scripts/ci/[0-9][0-9]-${name}.sh" | head -n 1 || true)
    if [ -z "$file" ]; then
        echo "ci: no step named '$name' (scripts/ci.sh list shows them)" >&2
        return 2
    fi
    echo "=== ci step: $name"
    local start=$SECONDS
    bash "$file"
    echo "=== ci step: $name passed in $((SECONDS - start)) s"
}

case "${1:-all}" in
list) steps ;;
all)
    total=$SECONDS
    for s in $(steps); do run_step "$s"; done
    echo "=== ci: all steps passed in $((SECONDS - total)) s"
    ;;
*) for s in "$@"; do run_step "$s"; done ;;
esac

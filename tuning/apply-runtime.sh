#!/usr/bin/env bash
# Apply the run-time tuning (THP mode, governor, IRQ affinity) from /etc/appliance/tuning.env.
# This is what appliance-tuning.service runs before the appliance starts.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
# shellcheck source=lib.sh
. "$here/lib.sh"

usage() {
    cat <<'USAGE'
Usage: apply-runtime.sh [--env FILE] [--apply]

Runs thp.sh, governor.sh and irq-affinity.sh with the settings in FILE (default
/etc/appliance/tuning.env: THP_MODE, GOVERNOR, ISOLATED_CPUS). Hugepages are reserved by
hugepages.sh (appliance-hugepages.service) and CPU isolation by the kernel command line
(kernel-cmdline.sh): neither can be changed safely here.

  --env FILE  settings file (variables already in the environment win)
  --apply     change the system (default: dry run)
  --help      this text
USAGE
}

env_file=/etc/appliance/tuning.env
pass=()
while [ "$#" -gt 0 ]; do
    case $1 in
    --apply | --dry-run) pass+=("$1"); shift ;;
    --env) env_file=${2:?--env needs a file}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done

# Read KEY=value lines without executing the file, keeping values already in the environment
# (systemd's EnvironmentFile= has set them under the unit).
if [ -r "$env_file" ]; then
    while IFS='=' read -r key value; do
        case $key in THP_MODE | GOVERNOR | ISOLATED_CPUS | HUGEPAGES) ;; *) continue ;; esac
        value=${value%\"}
        value=${value#\"}
        [ -n "${!key:-}" ] || export "$key=$value"
    done < <(grep -E '^[A-Z_]+=' "$env_file")
else
    echo "note   $env_file not found: using defaults"
fi

status=0
for step in thp.sh governor.sh irq-affinity.sh; do
    echo "== $step"
    "$here/$step" "${pass[@]}" || status=1
done
exit "$status"

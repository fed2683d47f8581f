#!/usr/bin/env bash
# The unit files pass `systemd-analyze verify` with nothing on stderr (it exits 0 even on
# unknown keys and bad values, so stderr is the real verdict) and score "OK" or better in
# `systemd-analyze security --offline=yes`.
#
# verify checks that ExecStart= binaries exist. The units name the installed paths
# (/usr/bin/appliance, /usr/lib/appliance/tuning/*.sh), so they are verified inside a scratch
# root laid out like the installed package: the freshly built binary, the tuning scripts, the
# units under usr/lib/systemd/system, and a copy of this machine's own systemd units so that
# network-online.target, sysinit.target and friends resolve. Nothing outside the scratch root
# is touched. PID 1 need not be systemd.
set -euo pipefail
source scripts/ci/lib.sh
need_apt systemd-analyze systemd

cargo build --locked --quiet -p appliance --bin appliance
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/usr/lib/appliance/tuning" "$root/usr/lib/systemd" "$root/etc/appliance"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
install -m 755 "$target_dir/debug/appliance" "$root/usr/bin/appliance"
install -m 755 tuning/*.sh "$root/usr/lib/appliance/tuning/"
install -m 644 tuning/tuning.env "$root/etc/appliance/tuning.env"
install -m 644 systemd/*.service "$root/usr/lib/systemd/system/"

status=0
for unit in systemd/*.service; do
    name=${unit##*/}
    err=$(systemd-analyze verify --man=no --root="$root" "/usr/lib/systemd/system/$name" 2>&1 >/dev/null) || {
        status=1
    }
    if [ -n "$err" ]; then
        echo "FAIL verify $name:" >&2
        printf '%s\n' "$err" >&2
        status=1
    else
        echo "ok   verify $name"
    fi
    verdict=$(systemd-analyze security --offline=yes --root="$root" "/usr/lib/systemd/system/$name" 2>&1 | tail -n 1)
    # e.g. "→ Overall exposure level for appliance.service: 1.7 OK 🙂"
    band=$(awk '{print $(NF-1)}' <<<"$verdict")
    case $band in
    PERFECT | SAFE | OK) echo "ok   security $name: ${verdict#*: }" ;;
    *)
        echo "FAIL security $name: ${verdict#*: } (want OK or better)" >&2
        status=1
        ;;
    esac
done
exit "$status"

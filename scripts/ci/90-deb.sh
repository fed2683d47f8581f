#!/usr/bin/env bash
# The Debian package: build it with cargo-deb (release profile), install it on this machine
# with dpkg, check that every file landed, that the conffiles are registered, that the
# installed binary and scripts run and that the installed units verify, then purge it.
# Leaves the .deb in <target>/debian/ (release.yml attaches it to the GitHub release).
set -euo pipefail
source scripts/ci/lib.sh
need_cargo_tool cargo-deb cargo-deb 3.8.0
need_apt dpkg-shlibdeps dpkg-dev
need_apt systemd-analyze systemd

# Never replace or remove an installation an operator made on this machine.
if dpkg-query -W -f='${Status}' appliance 2>/dev/null | grep -q 'ok installed'; then
    echo "ci: the appliance package is already installed here; refusing to replace and purge it" >&2
    exit 1
fi
if [ -e /usr/bin/appliance ]; then
    echo "ci: /usr/bin/appliance exists outside the package; refusing to overwrite it" >&2
    exit 1
fi

deb=$(cargo deb -p appliance --locked | tail -n 1)
[ -f "$deb" ] || { echo "ci: cargo deb did not report a .deb (got: $deb)" >&2; exit 1; }
echo "built $deb ($(du -h "$deb" | cut -f1))"
dpkg-deb --info "$deb" | sed -n '/Package:/,$p'
# The generated maintainer scripts reload systemd and stop/restart the service. The listing
# is read whole first: `grep -q` in the pipe would exit at its match and, under pipefail,
# tar's SIGPIPE on the rest of the listing would fail the check (it did, once, in CI).
control=$(dpkg-deb --ctrl-tarfile "$deb" | tar -tf -)
for script in postinst prerm postrm; do
    grep -qx "./$script" <<<"$control" ||
        { echo "ci: the package has no $script (cargo-deb systemd integration)" >&2; exit 1; }
done

trap 'dpkg -P appliance >/dev/null 2>&1 || true' EXIT
dpkg -i "$deb"

fail=0
check() {
    if [ -e "$1" ]; then echo "ok   $1"; else echo "FAIL missing $1" >&2; fail=1; fi
}
check /usr/bin/appliance
check /etc/appliance/appliance.toml
check /etc/appliance/tuning.env
for u in appliance appliance-hugepages appliance-tuning; do
    check "/usr/lib/systemd/system/$u.service"
done
for s in lib.sh hugepages.sh thp.sh governor.sh irq-affinity.sh kernel-cmdline.sh apply-runtime.sh; do
    check "/usr/lib/appliance/tuning/$s"
done
for d in tuning.md operations.md architecture.md; do
    check "/usr/share/doc/appliance/$d"
done
conffiles=$(dpkg-query -W -f='${Conffiles}' appliance)
for c in /etc/appliance/appliance.toml /etc/appliance/tuning.env; do
    if grep -q "$c" <<<"$conffiles"; then echo "ok   conffile $c"; else echo "FAIL $c is not a conffile" >&2; fail=1; fi
done

version=$(dpkg-query -W -f='${Version}' appliance)
out=$(/usr/bin/appliance --version)
echo "appliance --version: $out"
grep -q "${version%%-*}" <<<"$out" || { echo "FAIL --version does not say ${version%%-*}" >&2; fail=1; }
/usr/lib/appliance/tuning/hugepages.sh --pages 1 >/dev/null || { echo "FAIL installed hugepages.sh dry run" >&2; fail=1; }

# The units as installed (real paths now exist): verify must print nothing.
for u in appliance appliance-hugepages appliance-tuning; do
    err=$(systemd-analyze verify --man=no "/usr/lib/systemd/system/$u.service" 2>&1 >/dev/null || true)
    if [ -n "$err" ]; then echo "FAIL installed $u.service: $err" >&2; fail=1; else echo "ok   verify installed $u.service"; fi
done

dpkg -r appliance
[ ! -e /usr/bin/appliance ] || { echo "FAIL dpkg -r left /usr/bin/appliance" >&2; fail=1; }
[ -e /etc/appliance/appliance.toml ] || { echo "FAIL dpkg -r removed a conffile (only purge should)" >&2; fail=1; }
dpkg -P appliance
[ ! -e /etc/appliance/appliance.toml ] || { echo "FAIL dpkg -P left /etc/appliance/appliance.toml" >&2; fail=1; }
trap - EXIT
[ "$fail" = 0 ] && echo "deb: installed, checked and purged $deb"
exit "$fail"

#!/usr/bin/env bash
# Helpers the CI steps source: install a tool only when it is missing, so a step is fast on a
# prepared machine and still works on a fresh one.
set -euo pipefail

apt_updated=0
# need_apt COMMAND PACKAGE: install the Debian PACKAGE unless COMMAND is already on PATH.
need_apt() {
    local cmd=$1 pkg=$2
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [ "$apt_updated" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
}

# need_pip_requirements: install scripts/requirements.txt into the current python3.
need_pip_requirements() {
    python3 -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
}

# need_cargo_tool COMMAND CRATE [VERSION]: `cargo install --locked` unless COMMAND exists.
need_cargo_tool() {
    local cmd=$1 crate=$2 version=${3:-}
    command -v "$cmd" >/dev/null 2>&1 && return 0
    if [ -n "$version" ]; then
        cargo install --locked --quiet "$crate" --version "$version"
    else
        cargo install --locked --quiet "$crate"
    fi
}

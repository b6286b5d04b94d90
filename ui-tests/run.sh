#!/usr/bin/env bash
# The sidebar's tests, as CI runs them, from a fresh clone after `pip install -e ".[test]"`
# (which builds and installs the extension):
#   1. Debian's chromium if missing (Playwright cannot download browsers here),
#   2. the Node dev dependencies from the lockfile (jlpm = JupyterLab's yarn),
#   3. the TypeScript type check and the JS unit tests (jest),
#   4. the Playwright UI tests; Playwright starts ui-tests/fed_lab.py (three loopback runners and
#      JupyterLab with the jupyter_fed server extension) and stops it at the end.
# Screenshots: ui-tests/artifacts/*.png; report: ui-tests/playwright-report/. Extra arguments go
# to `playwright test` (e.g. `ui-tests/run.sh sidebar`).
#
# To test a build of this tree without installing it (a git worktree next to an installed
# checkout): `jlpm build`, then `FED_UI_LABEXTENSION=jupyter_fed/labextension FED_UI_PORT=8931
# ui-tests/run.sh`. The build goes first on JUPYTER_PATH and this tree first on PYTHONPATH, for
# this run only: the installed extension is shadowed, not touched.
set -euo pipefail
cd "$(dirname "$0")/.."

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 CI="${CI:-1}"
export FED_UI_PORT="${FED_UI_PORT:-8899}"
export FED_UI_WORKDIR="${FED_UI_WORKDIR:-${TMPDIR:-/tmp}/jupyter-fed-ui-${FED_UI_PORT}}"
export FED_UI_CHROMIUM="${FED_UI_CHROMIUM:-/usr/bin/chromium}"

if [ -n "${FED_UI_LABEXTENSION:-}" ]; then
    ext_dir="$(cd "$FED_UI_LABEXTENSION" && pwd)"
    if [ ! -f "$ext_dir/package.json" ]; then
        echo "ui-tests: $ext_dir holds no built extension; run: jlpm build" >&2
        exit 1
    fi
    data_dir="${FED_UI_WORKDIR}-jupyter"
    mkdir -p "$data_dir/labextensions"
    ln -sfn "$ext_dir" "$data_dir/labextensions/jupyter-fed"
    export JUPYTER_PATH="$data_dir${JUPYTER_PATH:+:$JUPYTER_PATH}"
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

if [ ! -x "$FED_UI_CHROMIUM" ]; then
    echo "ui-tests: installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if ! jupyter labextension list 2>&1 | grep -q "jupyter-fed.*enabled"; then
    echo "ui-tests: the jupyter-fed labextension is not installed; run: pip install -e \".[test]\"" >&2
    exit 1
fi

jlpm install --immutable | tail -n 1
jlpm typecheck
jlpm test --silent
rm -rf ui-tests/artifacts
cd ui-tests
exec ../node_modules/.bin/playwright test "$@"

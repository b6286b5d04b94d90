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
set -euo pipefail
cd "$(dirname "$0")/.."

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 CI="${CI:-1}"
export FED_UI_PORT="${FED_UI_PORT:-8899}"
export FED_UI_WORKDIR="${FED_UI_WORKDIR:-${TMPDIR:-/tmp}/jupyter-fed-ui-${FED_UI_PORT}}"
export FED_UI_CHROMIUM="${FED_UI_CHROMIUM:-/usr/bin/chromium}"

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

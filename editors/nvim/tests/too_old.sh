#!/usr/bin/env bash
# On a Neovim older than the minimum, setup() must print one clear error and change nothing (no client, no
# commands) — Neovim 0.7 has no `-l`, so this runs as plain startup commands. Usage: too_old.sh <nvim>
set -euo pipefail
cd "$(dirname "$0")/.."
out="$("$1" --headless -u NONE -i NONE --cmd "set rtp^=$(pwd)" \
  -c 'lua require("qwen-ls").setup({})' \
  -c 'lua io.stdout:write("commands=" .. vim.fn.exists(":QwenRefactor") .. "\n")' \
  -c 'qall!' 2>&1)"
echo "$out"
if grep -q "needs Neovim 0.10 or newer" <<<"$out" && grep -q "commands=0" <<<"$out"; then
  echo "1 passed, 0 failed"
else
  echo "0 passed, 1 failed"
  exit 1
fi

#!/usr/bin/env bash
# Runs a Neovim test suite: tests/run.sh unit|integration. $NVIM picks the binary (default: nvim on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${NVIM:-nvim}" --headless -l tests/run.lua "${1:-unit}"

#!/usr/bin/env bash
# The full engine benchmark of issue 8: `qwen-ls bench engine` on the default model's GGUF and on a3b-mini at
# Q8_0 and Q4_K_M, each against llama.cpp and candle-transformers. Models and the llama.cpp venv come from
# benches/engine/make_models.sh (same BENCH_DIR / LLAMA_VENV). Output: Markdown on stdout, also saved under
# $BENCH_DIR/results/.
#
# Usage: BENCH_DIR=/work/bench-models benches/engine/run.sh [extra `bench engine` flags, e.g. --repeat 5]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-$ROOT/target/bench-models}
LLAMA_VENV=${LLAMA_VENV:-$BENCH_DIR/llama-venv}
QWEN_LS=${QWEN_LS:-$ROOT/target/release/qwen-ls}

if [ -z "${QWEN_LS_SKIP_BUILD:-}" ]; then
    (cd "$ROOT" && cargo build --release -p qwen-ls --features bench-baseline)
fi
DEFAULT_MODEL=${DEFAULT_MODEL:-$("$QWEN_LS" model path)}
export QWEN_LS_LLAMA_PYTHON=${QWEN_LS_LLAMA_PYTHON:-$LLAMA_VENV/bin/python}
OUT=$BENCH_DIR/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"

run() {
    local name=$1
    shift
    echo "== $name" >&2
    "$QWEN_LS" bench engine "$@" | tee "$OUT/$name.md"
    echo
}
run default --model "$DEFAULT_MODEL" "${@}"
run a3b-mini-q8_0 --model "$BENCH_DIR/a3b-mini-q8_0.gguf" --hf-dir "$BENCH_DIR/a3b-mini" "${@}"
run a3b-mini-q4_k_m --model "$BENCH_DIR/a3b-mini-q4_k_m.gguf" --hf-dir "$BENCH_DIR/a3b-mini" "${@}"
echo "results saved in $OUT" >&2

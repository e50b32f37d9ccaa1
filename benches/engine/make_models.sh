#!/usr/bin/env bash
# Builds everything `qwen-ls bench engine` runs on, reproducibly, from a fresh machine:
#
#   1. a Python venv with llama-cpp-python 0.3.36 built with the CMAKE_ARGS that work on this CPU (NOTES: the
#      native build segfaults in its AMX path) — ~25 min on 2 cores; skipped when $LLAMA_VENV exists;
#   2. the llama-cpp-python sdist (pip download), extracted: vendor/llama.cpp/convert_hf_to_gguf.py + gguf-py;
#   3. the fixture venv (fixtures/setup-venv.sh: torch, transformers, safetensors) unless $FIXTURE_PY is given;
#   4. a3b-mini: a random-weight Qwen3-MoE checkpoint with Qwen3-Coder-30B-A3B's layer layout
#      (fixtures/models/make_bench_model.py; bf16, 5.7 GB);
#   5. a3b-mini-f16.gguf (convert_hf_to_gguf.py), then a3b-mini-q8_0.gguf and a3b-mini-q4_k_m.gguf with
#      llama.cpp's own quantizer (benches/engine/quantize.py);
#   6. the default model's GGUF (Qwen2.5-Coder-1.5B-Instruct Q4_K_M) via `qwen-ls model pull`, unless
#      $DEFAULT_MODEL points at it.
#
# Every step is skipped when its output exists. Outputs (~17 GB) go to $BENCH_DIR (default
# target/bench-models), never into git. Then it prints the `qwen-ls bench engine` commands to run.
#
# Usage: BENCH_DIR=/work/bench-models benches/engine/make_models.sh
# Reuse existing environments: LLAMA_VENV=/path/to/venv FIXTURE_PY=/path/to/python LLAMA_SDIST=/path/to/sdist.tar.gz
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-$ROOT/target/bench-models}
LLAMA_CPP_PYTHON=0.3.36
LLAMA_VENV=${LLAMA_VENV:-$BENCH_DIR/llama-venv}
FIXTURE_PY=${FIXTURE_PY:-$ROOT/fixtures/venv/bin/python}
THREADS=${THREADS:-$(nproc)}
# llama.cpp's native build uses AMX and segfaults on the first eval on this CPU (NOTES); AVX-512 + VNNI + BF16.
CMAKE_ARGS_LLAMA="-DGGML_NATIVE=OFF -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON \
-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"

mkdir -p "$BENCH_DIR/src"
step() { printf '\n== %s\n' "$*" >&2; }

step "1. llama-cpp-python $LLAMA_CPP_PYTHON in $LLAMA_VENV"
if [ ! -x "$LLAMA_VENV/bin/python" ] || ! "$LLAMA_VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
    python3 -m venv "$LLAMA_VENV"
    CMAKE_ARGS="$CMAKE_ARGS_LLAMA" "$LLAMA_VENV/bin/pip" install --no-cache-dir "llama-cpp-python==$LLAMA_CPP_PYTHON"
else
    echo "present: $("$LLAMA_VENV/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)')" >&2
fi

step "2. llama.cpp's GGUF converter (llama-cpp-python $LLAMA_CPP_PYTHON sdist)"
SRC=$BENCH_DIR/src/llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp
if [ ! -f "$SRC/convert_hf_to_gguf.py" ]; then
    SDIST=${LLAMA_SDIST:-}
    if [ -z "$SDIST" ]; then
        # The sdist straight from PyPI's JSON API, checked against its published SHA-256 (`pip download` of an
        # sdist would run its CMake build backend just to read the metadata).
        SDIST=$BENCH_DIR/src/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz
        python3 - "$LLAMA_CPP_PYTHON" "$SDIST" <<'PY'
import hashlib, json, sys, urllib.request
version, out = sys.argv[1], sys.argv[2]
meta = json.load(urllib.request.urlopen(f"https://pypi.org/pypi/llama-cpp-python/{version}/json"))
sdist = next(u for u in meta["urls"] if u["packagetype"] == "sdist")
data = urllib.request.urlopen(sdist["url"]).read()
if hashlib.sha256(data).hexdigest() != sdist["digests"]["sha256"]:
    sys.exit(f"{sdist['url']}: SHA-256 mismatch")
open(out, "wb").write(data)
PY
    fi
    tar -xzf "$SDIST" -C "$BENCH_DIR/src" --wildcards \
        "llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp/convert_hf_to_gguf.py" \
        "llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp/conversion/*" \
        "llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp/gguf-py/*"
fi

step "3. fixture Python (torch, transformers) at $FIXTURE_PY"
if [ ! -x "$FIXTURE_PY" ]; then
    "$ROOT/fixtures/setup-venv.sh"
    FIXTURE_PY=$ROOT/fixtures/venv/bin/python
fi

step "4. a3b-mini checkpoint"
if [ ! -f "$BENCH_DIR/a3b-mini/model.safetensors.index.json" ]; then
    "$FIXTURE_PY" "$ROOT/fixtures/models/make_bench_model.py" a3b-mini "$BENCH_DIR/a3b-mini"
fi

step "5. a3b-mini GGUF: f16, Q8_0, Q4_K_M"
if [ ! -f "$BENCH_DIR/a3b-mini-f16.gguf" ] && \
   { [ ! -f "$BENCH_DIR/a3b-mini-q8_0.gguf" ] || [ ! -f "$BENCH_DIR/a3b-mini-q4_k_m.gguf" ]; }; then
    # The converter's own gguf-py (next to it in the sdist) is used, not a pip-installed gguf.
    "$FIXTURE_PY" "$SRC/convert_hf_to_gguf.py" "$BENCH_DIR/a3b-mini" --outtype f16 \
        --outfile "$BENCH_DIR/a3b-mini-f16.gguf.incomplete"
    mv "$BENCH_DIR/a3b-mini-f16.gguf.incomplete" "$BENCH_DIR/a3b-mini-f16.gguf"
fi
for q in q8_0 q4_k_m; do
    if [ ! -f "$BENCH_DIR/a3b-mini-$q.gguf" ]; then
        "$LLAMA_VENV/bin/python" "$ROOT/benches/engine/quantize.py" "$BENCH_DIR/a3b-mini-f16.gguf" \
            "$BENCH_DIR/a3b-mini-$q.gguf" "$q" --threads "$THREADS"
    fi
done

step "6. the default model's GGUF"
if [ -z "${DEFAULT_MODEL:-}" ]; then
    (cd "$ROOT" && cargo build --release -p qwen-ls --features bench-baseline)
    "$ROOT/target/release/qwen-ls" model pull
    DEFAULT_MODEL=$("$ROOT/target/release/qwen-ls" model path)
fi

cat <<MSG

Models are in $BENCH_DIR. Run the benchmark (release build with the candle baseline):

  cargo build --release -p qwen-ls --features bench-baseline
  export QWEN_LS_LLAMA_PYTHON=$LLAMA_VENV/bin/python
  target/release/qwen-ls bench engine --model $DEFAULT_MODEL
  target/release/qwen-ls bench engine --model $BENCH_DIR/a3b-mini-q8_0.gguf --hf-dir $BENCH_DIR/a3b-mini
  target/release/qwen-ls bench engine --model $BENCH_DIR/a3b-mini-q4_k_m.gguf --hf-dir $BENCH_DIR/a3b-mini
MSG

#!/usr/bin/env python3
# (Not named llama_cpp.py: the script's directory comes first on sys.path, so `import llama_cpp` would import itself.)
"""Times llama.cpp (through llama-cpp-python's low-level calls) on one GGUF file and prints JSON on stdout.

What is timed, per repetition, on a fresh KV cache:
  prefill  one `eval` of the whole prompt (n_batch = n_ubatch = prompt length: a single ubatch)
  decode   DECODE single-token `eval`s, greedy: argmax over `llama_get_logits_ith(-1)` on the host (numpy,
           ~0.1 ms), included in the time. llama-cpp-python's own sampler adds ~45 ms per token on this
           machine, so it is not used: this measures llama.cpp itself.
One warm-up (16 tokens) runs before the first repetition. Logs of llama.cpp go to stderr.

Prompt ids: --prompt-ids FILE (a JSON array, what `qwen-ls bench engine` passes so every engine sees the same
ids) or --prompt-tokens N (the same deterministic pseudo-random ids `qwen-ls bench engine` generates).

Run: PYTHON benches/engine/time_llama_cpp.py MODEL.gguf [--threads 2] [--prompt-tokens 512] [--decode 128] [--repeat 3]
where PYTHON has llama-cpp-python (benches/engine/make_models.sh builds one with the right CMAKE_ARGS).
"""

import argparse
import json
import os
import sys
import time


def prompt_ids(n, vocab):
    """The ids `qwen-ls bench engine` uses: a 64-bit LCG, bits 33.. modulo the vocabulary."""
    state, out = 0x9E3779B97F4A7C15, []
    for _ in range(n):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        out.append((state >> 33) % vocab)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--prompt-ids", help="JSON file with the prompt token ids")
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--decode", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    try:
        import numpy as np
        import llama_cpp
    except ImportError as e:
        sys.exit(f"time_llama_cpp.py: {e}: run it with a python that has llama-cpp-python "
                 "(benches/engine/make_models.sh creates one)")

    if args.prompt_ids:
        with open(args.prompt_ids) as f:
            prompt = [int(t) for t in json.load(f)]
    else:
        prompt = prompt_ids(args.prompt_tokens, 151643)
    # The context the run needs, not the model's trained one (262,144 positions would allocate gigabytes).
    n_ctx = (len(prompt) + args.decode + 16 + 255) // 256 * 256
    started = time.perf_counter()
    llm = llama_cpp.Llama(
        model_path=args.model, n_ctx=n_ctx, n_threads=args.threads, n_threads_batch=args.threads,
        n_batch=n_ctx, n_ubatch=n_ctx, logits_all=False, verbose=False,
    )
    load_s = time.perf_counter() - started
    n_vocab = llm.n_vocab()
    if not args.prompt_ids and n_vocab < 151643:
        prompt = prompt_ids(args.prompt_tokens, n_vocab)
    if max(prompt) >= n_vocab:
        sys.exit(f"time_llama_cpp.py: prompt id {max(prompt)} is outside the model's vocabulary of {n_vocab}")

    def last_argmax():
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,))
        return int(logits.argmax())

    # Warm-up: thread pool, buffers.
    llm.reset()
    llm.eval(prompt[:16])
    last_argmax()

    prefill, decode, tokens = [], [], None
    for _ in range(args.repeat):
        llm.reset()
        t = time.perf_counter()
        llm.eval(prompt)
        nxt = last_argmax()
        prefill.append(len(prompt) / (time.perf_counter() - t))
        run = []
        t = time.perf_counter()
        for _ in range(args.decode):
            run.append(nxt)
            llm.eval([nxt])
            nxt = last_argmax()
        decode.append(args.decode / (time.perf_counter() - t))
        tokens = tokens or run

    json.dump({
        "engine": "llama.cpp",
        "version": f"llama-cpp-python {llama_cpp.__version__}",
        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
        "threads": args.threads,
        "load_s": load_s,
        "prompt_tokens": len(prompt),
        "decode_tokens": args.decode,
        "prefill_tok_s": prefill,
        "decode_tok_s": decode,
        "tokens": tokens,
    }, sys.stdout)
    print()


if __name__ == "__main__":
    main()

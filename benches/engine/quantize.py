#!/usr/bin/env python3
"""Quantizes a GGUF file with llama.cpp's own quantizer (`llama_model_quantize`, through llama-cpp-python).

Run: PYTHON benches/engine/quantize.py IN.gguf OUT.gguf q8_0|q4_k_m|q4_k_s [--threads N]
(PYTHON: a Python with llama-cpp-python; benches/engine/make_models.sh creates one.)
"""

import argparse
import ctypes
import os
import sys

FTYPES = {"q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
          "q4_k_s": "LLAMA_FTYPE_MOSTLY_Q4_K_S"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input")
    parser.add_argument("output")
    parser.add_argument("type", choices=sorted(FTYPES))
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[args.type])
    params.nthread = args.threads
    tmp = args.output + ".incomplete"
    rc = llama_cpp.llama_model_quantize(args.input.encode(), tmp.encode(), ctypes.byref(params))
    if rc != 0:
        sys.exit(f"quantize.py: llama_model_quantize({args.input}, {args.type}) failed with {rc}")
    os.replace(tmp, args.output)
    print(f"{args.output}: {os.path.getsize(args.output) / 1e9:.2f} GB ({args.type})")


if __name__ == "__main__":
    main()

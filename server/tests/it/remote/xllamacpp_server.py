"""llama.cpp's own HTTP server (llama-server, from the prebuilt PyPI wheel `xllamacpp`) with the command line of
llama-cpp-python's `python -m llama_cpp.server`, so the remote-backend tests (server/tests/it/remote/) can start
either one the same way: QWEN_LS_LLAMA_SERVER=xllamacpp picks this script.

Serves until killed (SIGTERM/SIGINT). The wheel's CPU build uses AVX2 at most, so it runs on every x86-64 CPU
CI has had (AVX2-only AMD, AVX-512 and AMX Xeons) — no 25-minute source build.
"""

import argparse
import os
import shutil
import signal
import struct
import sys
import tempfile
import threading

import xllamacpp


# GGUF metadata value types: fixed sizes, 8 = string, 9 = array.
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _skip_value(f, kind: int) -> None:
    if kind in _FIXED:
        f.seek(_FIXED[kind], os.SEEK_CUR)
    elif kind == 8:
        (length,) = struct.unpack("<Q", f.read(8))
        f.seek(length, os.SEEK_CUR)
    elif kind == 9:
        item, count = struct.unpack("<IQ", f.read(12))
        for _ in range(count):
            _skip_value(f, item)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")


def with_context_length(model: str, n_ctx: int, directory: str) -> str:
    """A copy of `model` whose `<arch>.context_length` is at least `n_ctx`.

    llama-server caps every slot at the context length the GGUF states (the fixtures say 256) whatever `-c`
    asks for, and this wheel does not expose `--override-kv`; llama-cpp-python's server does not cap. The
    copy keeps every tensor and the arithmetic as they are (RoPE scaling would change the logits).
    """
    copy = os.path.join(directory, os.path.basename(model))
    shutil.copyfile(model, copy)
    with open(copy, "r+b") as f:
        magic, _version, _tensors, kv_count = struct.unpack("<4sIQQ", f.read(24))
        if magic != b"GGUF":
            raise ValueError(f"{model} is not a GGUF file")
        for _ in range(kv_count):
            (length,) = struct.unpack("<Q", f.read(8))
            key = f.read(length).decode("utf-8")
            (kind,) = struct.unpack("<I", f.read(4))
            if key.endswith(".context_length") and kind in (4, 10):
                fmt = "<I" if kind == 4 else "<Q"
                (value,) = struct.unpack(fmt, f.read(struct.calcsize(fmt)))
                if value < n_ctx:
                    f.seek(-struct.calcsize(fmt), os.SEEK_CUR)
                    f.write(struct.pack(fmt, n_ctx))
                return copy
            _skip_value(f, kind)
    return copy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", required=True)
    parser.add_argument("--model_alias", default="")
    parser.add_argument("--n_threads", type=int, default=1)
    parser.add_argument("--n_ctx", type=int, default=2048)
    args = parser.parse_args()

    scratch = tempfile.mkdtemp(prefix="qwen-ls-xllamacpp-")
    params = xllamacpp.CommonParams()
    params.model.path = with_context_length(args.model, args.n_ctx, scratch)
    if args.model_alias:
        params.model_alias = {args.model_alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.n_ctx
    params.n_parallel = 1
    params.fit_params = False
    params.cpuparams.n_threads = args.n_threads
    params.cpuparams_batch.n_threads = args.n_threads
    server = xllamacpp.Server(params)
    print(f"xllamacpp {xllamacpp.__version__ if hasattr(xllamacpp, '__version__') else ''} "
          f"listening on {server.listening_address}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    del server
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

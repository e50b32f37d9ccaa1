#!/usr/bin/env python3
"""A scripted OpenAI-compatible model server for the editor integration tests (Python 3 standard library only).

The language server under test is the real `qwen-ls` on its real remote backend (`backend = "openai"`); only the
model is fake: every answer is fixed, so the tests can check that a refactor changes the editor's buffer to an
exact text (`expected/lib.rs`).

  GET  /v1/models            -> one model, `fake-coder`, with a context window (`max_model_len`)
  POST /v1/chat/completions  -> (stream) one SEARCH/REPLACE edit of `src/lib.rs`: `total`'s loop becomes
                                `values.iter().sum()`; chunks of `chat.completion.chunk`, then `data: [DONE]`;
                                an explanation request (qwen-ls's explain system prompt) gets EXPLANATION
  POST /v1/completions       -> (stream) a fixed FIM completion, then `data: [DONE]`; a sampled request (an
                                alternative: `seed` set) gets the answer of its seed in FIM_ALTERNATIVES, so
                                an invoked completion has three distinct suggestions to cycle through

Usage: fake_openai.py [--port N] [--answers FILE] [--requests FILE]
  --port N        0, the default: a free loopback port
  --answers FILE  a JSON list of chat answers, served in order (the last one again once they run out) instead of
                  the fixed edit: the scripted rounds of `qwen-ls patch --test-cmd` (server/tests/it/fix_loop.rs)
  --requests FILE every request body is appended to FILE as one JSON line, for tests that check the prompts
The first line on stdout is `http://127.0.0.1:<port>/v1` once it listens; requests are logged on stderr. Stops on
SIGTERM/SIGINT.
"""
import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "fake-coder"

# The edit, in the server's format (patch/src/format.rs, EDIT_FORMAT_INSTRUCTIONS), with a line of
# prose first as real models write it.
CHAT_ANSWER = """I replaced the loop with an iterator sum.

src/lib.rs
```rust
<<<<<<< SEARCH
    let mut sum = 0;
    for v in values {
        sum = add(sum, *v);
    }
    sum
=======
    values.iter().sum()
>>>>>>> REPLACE
```
"""

EXPLANATION = "**Adds `a` and `b`** and returns the sum (scripted explanation)."

FIM_ANSWER = "    if n < 2 {\n        return n;\n    }"

# By seed: seed 1 repeats the greedy answer (the server must drop the duplicate), 2 and 3 differ.
FIM_ALTERNATIVES = {
    1: FIM_ANSWER,
    2: "    match n {\n        0 | 1 => n,\n        _ => fibonacci(n - 1) + fibonacci(n - 2),\n    }",
    3: "    (0..n).fold((0, 1), |(a, b), _| (b, a + b)).0",
}


def pieces(text, size=7):
    """The answer in small chunks, as a server streams tokens."""
    return [text[i : i + size] for i in range(0, len(text), size)]


class Script:
    """The chat answers to give, in order, and where to log request bodies (set from the command line)."""

    answers = None
    requests = None
    served = 0
    lock = threading.Lock()

    @classmethod
    def next_chat_answer(cls):
        if not cls.answers:
            return CHAT_ANSWER
        with cls.lock:
            answer = cls.answers[min(cls.served, len(cls.answers) - 1)]
            cls.served += 1
        return answer

    @classmethod
    def log(cls, request):
        if cls.requests:
            with cls.lock, open(cls.requests, "a", encoding="utf-8") as out:
                out.write(json.dumps(request) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_openai: " + (fmt % args) + "\n")

    def _json(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "max_model_len": 32768}]})
        else:
            self._json(404, {"error": {"message": "Not Found: " + self.path}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._json(400, {"error": {"message": "the body is not JSON"}})
            return
        path = self.path.rstrip("/")
        if path == "/v1/chat/completions":
            chat = True
        elif path == "/v1/completions":
            chat = False
        else:
            self._json(404, {"error": {"message": "Not Found: " + self.path}})
            return
        Script.log(request)
        if request.get("model") != MODEL:
            self._json(404, {"error": {"message": "The model `%s` does not exist." % request.get("model")}})
            return
        if not request.get("stream"):
            self._json(400, {"error": {"message": "this fake server only streams"}})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(value):
            self.wfile.write(b"data: " + json.dumps(value).encode() + b"\n\n")
            self.wfile.flush()

        if chat:
            system = " ".join(m.get("content", "") for m in request.get("messages", []) if m.get("role") == "system")
            # An explanation never takes one of the scripted edit answers.
            text = EXPLANATION if "You explain code" in system else Script.next_chat_answer()
        else:
            text = FIM_ALTERNATIVES.get(request.get("seed"), FIM_ANSWER)
        kind = "chat.completion.chunk" if chat else "text_completion"
        try:
            for piece in pieces(text):
                choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
                choice["finish_reason"] = None
                event({"id": "fake", "object": kind, "model": MODEL, "choices": [choice]})
            last = {"index": 0, "finish_reason": "stop"}
            last.update({"delta": {}} if chat else {"text": ""})
            event({"id": "fake", "object": kind, "model": MODEL, "choices": [last]})
            event({"id": "fake", "object": kind, "model": MODEL, "choices": [],
                   "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client cancelled (typing on): it closes the connection


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--answers")
    parser.add_argument("--requests")
    args = parser.parse_args()
    if args.answers:
        with open(args.answers, encoding="utf-8") as answers:
            Script.answers = json.load(answers)
    Script.requests = args.requests
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("http://127.0.0.1:%d/v1" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

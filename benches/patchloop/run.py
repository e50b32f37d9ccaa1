#!/usr/bin/env python3
"""Benchmark of `qwen-ls patch --test-cmd` (the check loop) on the tasks of fixtures/patchloop/tasks.json.

For every task: copy its repository to a temporary directory (marked with `.git`), run

    qwen-ls patch INSTRUCTION --root R --files R/F --test-cmd TEST --max-rounds N --json

with the default model (or --model), and record the verdict, the rounds, and the time. Round 1 of that run is the
"one round" result (greedy decoding: a separate `--max-rounds 1` run gives the same first answer). Every green
result is verified independently: its final diff is applied with `git apply` to a fresh copy and the test command
run there.

With --old-qwen-ls BINARY (a build from before the answer-format work), the first-round answers are replayed
through editors/testdata/fake_openai.py to that binary and to the new one (`patch … --check`, no loop): the share
of answers each can turn into a patch is the first-round parse success rate, before and after, on the same
answers.

Python 3 standard library only. Prints a Markdown table; --out FILE writes every number as JSON and each task's
whole transcript (every round's answer, checks and output) to FILE.transcripts/TASK.json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
FAKE_SERVER = os.path.join(REPO, "editors", "testdata", "fake_openai.py")


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def copy_repo(tasks_dir, task, into):
    root = os.path.join(into, task["name"])
    shutil.copytree(os.path.join(tasks_dir, "repos", task["repo"]), root)
    os.makedirs(os.path.join(root, ".git"))
    return root


def model_args(args):
    out = ["--budget", str(args.budget), "--max-tokens", str(args.max_tokens)]
    if args.model:
        out += ["--model", args.model]
    return out


def run_loop(args, tasks_dir, task, scratch):
    root = copy_repo(tasks_dir, task, scratch)
    files = [os.path.join(root, f) for f in task["files"]]
    command = [args.qwen_ls, "patch", task["instruction"], "--root", root, "--files", *files,
               "--test-cmd", task["test"], "--max-rounds", str(args.rounds), "--json", *model_args(args)]
    load_before = load_average()
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, cwd=root, env=check_env(scratch))
    wall = time.monotonic() - started
    result = {"task": task["name"], "exit": done.returncode, "wall_secs": wall,
              "load_before": load_before, "load_after": load_average()}
    try:
        transcript = json.loads(done.stdout)
    except ValueError:
        result["error"] = done.stderr[-2000:]
        return result
    if args.out:
        keep = args.out + ".transcripts"
        os.makedirs(keep, exist_ok=True)
        with open(os.path.join(keep, task["name"] + ".json"), "w") as f:
            json.dump(transcript, f, indent=1)
    rounds = transcript.get("rounds", [])
    result.update({
        "verdict": transcript.get("verdict"),
        "rounds": len(rounds),
        "round_outcomes": [r["outcome"] for r in rounds],
        "round_secs": [r["generation_secs"] + r["check_secs"] for r in rounds],
        "formats": [r["format"] for r in rounds],
        "answer_errors": [r["answer_error"] for r in rounds],
        "prompt_tokens": [r["prompt_tokens"] for r in rounds],
        "generated_tokens": [r["generated_tokens"] for r in rounds],
        "first_answer": rounds[0]["answer"] if rounds else None,
        "loop_secs": transcript.get("duration_secs"),
        "diff": transcript.get("diff", ""),
    })
    if result["verdict"] == "green":
        result["verified"] = verify(tasks_dir, task, scratch, result["diff"])
    return result


def check_env(scratch):
    """The environment of every run: one cargo target directory for the whole benchmark, in its scratch space
    (qwen-ls would otherwise keep one per copied repository under its cache directory)."""
    env = dict(os.environ)
    env["CARGO_TARGET_DIR"] = os.path.join(os.path.dirname(scratch), "cargo-target")
    return env


def verify(tasks_dir, task, scratch, diff):
    """Applies the diff to a fresh copy with `git apply` and runs the test there."""
    check = os.path.join(scratch, "verify")
    root = copy_repo(tasks_dir, task, check)
    if diff:
        applied = subprocess.run(["git", "apply", "-"], input=diff, text=True, cwd=root, capture_output=True)
        if applied.returncode != 0:
            return False
    tested = subprocess.run(task["test"], shell=True, cwd=root, capture_output=True, env=check_env(scratch))
    shutil.rmtree(check, ignore_errors=True)
    return tested.returncode == 0


def replay(binary, args, tasks_dir, task, scratch, answer):
    """Exit code of `binary patch … --check` when the model's answer is `answer` (served by fake_openai.py)."""
    root = copy_repo(tasks_dir, task, os.path.join(scratch, "replay-" + os.path.basename(binary)))
    answers = os.path.join(scratch, "answers.json")
    with open(answers, "w") as f:
        json.dump([answer], f)
    server = subprocess.Popen([sys.executable, FAKE_SERVER, "--answers", answers], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    try:
        endpoint = server.stdout.readline().strip()
        files = [os.path.join(root, f) for f in task["files"]]
        done = subprocess.run([binary, "patch", task["instruction"], "--root", root, "--files", *files,
                               "--endpoint", endpoint, "--remote-model", "fake-coder", "--check",
                               "--budget", str(args.budget), "--max-tokens", str(args.max_tokens)],
                              capture_output=True, text=True, cwd=root)
        return done.returncode
    finally:
        server.terminate()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qwen-ls", default=os.path.join(REPO, "target", "release", "qwen-ls"))
    parser.add_argument("--old-qwen-ls", help="a qwen-ls from before the answer-format work, for the parse rate")
    parser.add_argument("--tasks", default=os.path.join(REPO, "fixtures", "patchloop", "tasks.json"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=3000)
    parser.add_argument("--max-tokens", type=int, default=768)
    parser.add_argument("--model", help="default: the default model")
    parser.add_argument("--only", nargs="*", help="task names")
    parser.add_argument("--out", help="write the results as JSON")
    args = parser.parse_args()
    tasks_dir = os.path.dirname(os.path.abspath(args.tasks))
    with open(args.tasks) as f:
        tasks = [t for t in json.load(f)["tasks"] if not args.only or t["name"] in args.only]
    results = []
    with tempfile.TemporaryDirectory(prefix="patchloop-bench-") as scratch:
        for task in tasks:
            result = run_loop(args, tasks_dir, task, os.path.join(scratch, task["name"]))
            print(json.dumps({k: v for k, v in result.items() if k not in ("first_answer", "diff")}),
                  file=sys.stderr, flush=True)
            if args.old_qwen_ls and result.get("first_answer") is not None:
                where = os.path.join(scratch, task["name"])
                result["parse_exit_old"] = replay(args.old_qwen_ls, args, tasks_dir, task, where,
                                                  result["first_answer"])
                result["parse_exit_new"] = replay(args.qwen_ls, args, tasks_dir, task, where,
                                                  result["first_answer"])
            results.append(result)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    print_table(results, args)


def print_table(results, args):
    print("| task | round 1 | round-1 s | up to %d rounds | rounds | total s | verified | load |" % args.rounds)
    print("|---|---|---:|---|---:|---:|---|---|")
    for r in results:
        outcomes = r.get("round_outcomes") or ["error"]
        first = "pass" if outcomes[0] == "green" else outcomes[0]
        final = "pass" if r.get("verdict") == "green" else r.get("verdict", "error")
        round1 = r.get("round_secs", [0])[0] if r.get("round_secs") else 0
        print("| %s | %s | %.0f | %s | %s | %.0f | %s | %.1f–%.1f |" % (
            r["task"], first, round1, final, r.get("rounds", "-"), r.get("loop_secs") or r["wall_secs"],
            {True: "yes", False: "NO", None: "-"}[r.get("verified")], r["load_before"], r["load_after"]))
    n = len(results)
    one = sum(1 for r in results if (r.get("round_outcomes") or ["x"])[0] == "green")
    up_to = sum(1 for r in results if r.get("verdict") == "green")
    t_one = sum((r.get("round_secs") or [0])[0] for r in results)
    t_all = sum(r.get("loop_secs") or r["wall_secs"] for r in results)
    print()
    print("pass rate: 1 round %d/%d, up to %d rounds %d/%d; time: round 1 %.0f s in all, loop %.0f s in all"
          % (one, n, args.rounds, up_to, n, t_one, t_all))
    if any("parse_exit_old" in r for r in results):
        replayed = [r for r in results if "parse_exit_old" in r]
        old = sum(1 for r in replayed if r["parse_exit_old"] in (0, 1))
        new = sum(1 for r in replayed if r["parse_exit_new"] in (0, 1))
        print("first-round answers turned into a patch: before %d/%d, after %d/%d" % (old, len(replayed), new,
                                                                                  len(replayed)))


if __name__ == "__main__":
    main()

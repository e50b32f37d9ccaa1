"""Recall of Aider's repository map on the sites of `qwen-ls bench context --sites-out FILE`.

For every site: a copy of the repository with the site's file cut right before the identifier (as qwen-ls
sees it), that file given to Aider's RepoMap as the chat file, every other file as the other files, and the
map built at each budget with token counts from the Qwen tokenizer (exact, instead of Aider's sampled
estimate). A site is recalled when a tag Aider put into the map is the definition's line (the map shows
exactly those lines, with their enclosing scopes). Aider keeps a map that is up to 15% over its budget; the
actual sizes are reported.

Usage (aider-chat 0.86.x and tokenizers in a virtual environment outside the repository):
    python benches/context/aider_map.py SITES.jsonl fixtures/tokenizer/tokenizer.json \
        [--budgets 2048,8192,32768] [--json OUT.json]
"""

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile

from aider.io import InputOutput
from aider.repomap import RepoMap
from tokenizers import Tokenizer


class QwenModel:
    """The part of Aider's model interface RepoMap uses: exact token counts with the Qwen tokenizer."""

    def __init__(self, tokenizer_path):
        self.tokenizer = Tokenizer.from_file(tokenizer_path)

    def token_count(self, text):
        if not isinstance(text, str):
            text = json.dumps(text)
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)


def source_files(root):
    out = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            out.append(os.path.join(directory, name))
    return sorted(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sites")
    parser.add_argument("tokenizer")
    parser.add_argument("--budgets", default="2048,8192,32768")
    parser.add_argument("--json")
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    model = QwenModel(args.tokenizer)
    by_repo = collections.OrderedDict()
    with open(args.sites) as f:
        for line in f:
            record = json.loads(line)
            by_repo.setdefault(record["repository"], []).append(record["site"])

    results = []
    for repository, sites in by_repo.items():
        name = os.path.basename(repository.rstrip("/"))
        work = tempfile.mkdtemp(prefix="aider-map-")
        copy = os.path.join(work, name)
        shutil.copytree(repository, copy, symlinks=True)
        io = InputOutput(pretty=False, yes=True, fancy_input=False)
        repo_map = RepoMap(map_tokens=budgets[0], root=copy, main_model=model, io=io, refresh="always")
        # The tags of each tree Aider builds, to know which definitions the chosen map shows.
        trees = {}
        original_to_tree = repo_map.to_tree

        def to_tree(tags, chat_rel_fnames, original=original_to_tree):
            tree = original(tags, chat_rel_fnames)
            trees[tree] = [t for t in tags if len(t) > 1]
            return tree

        repo_map.to_tree = to_tree
        all_files = source_files(copy)
        hits = [0] * len(budgets)
        sizes = [[] for _ in budgets]
        for site in sites:
            path = os.path.join(copy, site["path"])
            with open(path, "rb") as f:
                original = f.read()
            with open(path, "wb") as f:
                f.write(original[: site["offset"]])
            try:
                others = [p for p in all_files if p != path]
                for i, budget in enumerate(budgets):
                    trees.clear()
                    tree = repo_map.get_ranked_tags_map(
                        [path], others, max_map_tokens=budget, force_refresh=True
                    )
                    if not tree:
                        continue
                    sizes[i].append(model.token_count(tree))
                    shown = {(t.rel_fname, t.line) for t in trees.get(tree, []) if t.kind == "def"}
                    if (site["definition_path"], site["definition_line"]) in shown:
                        hits[i] += 1
            finally:
                with open(path, "wb") as f:
                    f.write(original)
        shutil.rmtree(work, ignore_errors=True)
        n = max(len(sites), 1)
        row = {
            "name": name,
            "sites": len(sites),
            "budgets": budgets,
            "aider": [round(h / n, 3) for h in hits],
            "max_map_tokens": [max(s) if s else 0 for s in sizes],
        }
        print(json.dumps(row), file=sys.stderr)
        results.append(row)
    mean = [round(sum(r["aider"][i] for r in results) / max(len(results), 1), 3) for i in range(len(budgets))]
    report = {"budgets": budgets, "repositories": results, "mean": mean}
    text = json.dumps(report, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Import cycles between the top-level modules of each crate (crate::a -> crate::b references,
including `super::b` from a top-level module's file). Tests (#[cfg(test)] and *_tests.rs) ignored."""
import re, sys, os, glob
from collections import defaultdict

def top_module(crate_src, path):
    rel = os.path.relpath(path, crate_src)
    parts = rel.split(os.sep)
    name = parts[0][:-3] if parts[0].endswith('.rs') else parts[0]
    return None if name in ('lib', 'main') else name

def strip_tests(text):
    i = text.find('#[cfg(test)]')
    return text if i < 0 else text[:i]

def scc(graph):
    index, low, on, stack, out, n = {}, {}, set(), [], [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in list(graph):
        if v not in index: visit(v)
    return out

status = 0
for crate_src in sys.argv[1:]:
    graph = defaultdict(set)
    mods = set()
    for f in glob.glob(os.path.join(crate_src, '**/*.rs'), recursive=True):
        if f.endswith('_tests.rs') or os.sep + 'tests' + os.sep in f: continue
        m = top_module(crate_src, f)
        if m is None: continue
        mods.add(m)
    for f in glob.glob(os.path.join(crate_src, '**/*.rs'), recursive=True):
        if f.endswith('_tests.rs'): continue
        m = top_module(crate_src, f)
        if m is None: continue
        text = strip_tests(open(f).read())
        text = re.sub(r'//[^\n]*', '', text)
        graph[m]
        for ref in re.findall(r'\bcrate::([a-z_][a-z0-9_]*)', text):
            if ref in mods and ref != m: graph[m].add(ref)
        for block in re.findall(r'\bcrate::\{([^}]*)\}', text):
            for ref in re.findall(r'\b([a-z_][a-z0-9_]*)::', block + '::'):
                if ref in mods and ref != m: graph[m].add(ref)
        depth = len(os.path.relpath(f, crate_src).split(os.sep))  # 1 = top-level file
        is_mod_file = os.path.basename(f) == 'mod.rs'
        levels_to_root = depth - 1 if is_mod_file else depth
        if levels_to_root == 1:
            for ref in re.findall(r'\bsuper::([a-z_][a-z0-9_]*)', text):
                if ref in mods and ref != m: graph[m].add(ref)
    cycles = scc(graph)
    for c in cycles:
        print(f'{crate_src}: cycle {" <-> ".join(c)}')
        for a in c:
            print(f'    {a} -> {sorted(graph[a] & set(c))}')
        status = 1
sys.exit(status)

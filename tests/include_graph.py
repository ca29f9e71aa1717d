#!/usr/bin/env python3
"""The include check `make check` runs (docs/architecture.md, "Dependencies").

Reads every `#include "..."` of the C sources under ROOT (default .), maps
each file to its top folder and prints the folder graph. Fails (exit 1),
naming the files, on:
  - a cycle between folders;
  - an upward edge against the declared order
        lib, bpf  <-  model  <-  sense, decide, act, record, k8s  <-  cmd
    (a folder includes only folders of a lower rank, or of its own rank
    when that makes no cycle);
  - a stage other than decide including act's interface;
  - a folder with C sources that is not in the declared order.
Includes of files that are not in the tree (system headers, the generated
skeletons and protobuf code under build/) are not edges. tests/ is not
checked: a test may reach anywhere."""
import os
import re
import sys

RANK = {"lib": 0, "bpf": 0, "model": 1,
        "sense": 2, "decide": 2, "act": 2, "record": 2, "k8s": 2,
        "cmd": 3}
# the stages that may include act's interface (cmd is above every stage)
ACT_USERS = {"decide", "cmd"}
SKIP = {"tests", "build", "proto", "deploy", "docs", "rules", ".git", ".ci"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(root):
    for top in sorted(os.listdir(root)):
        d = os.path.join(root, top)
        if top in SKIP or not os.path.isdir(d):
            continue
        for dirpath, _, files in os.walk(d):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    p = os.path.relpath(os.path.join(dirpath, f), root)
                    yield top, p


def edges(root):
    """{(from folder, to folder): [(file, included path), ...]}"""
    out, folders = {}, set()
    for top, path in sources(root):
        folders.add(top)
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            dst = inc.split("/")[0] if "/" in inc else None
            if dst is None or not os.path.isfile(os.path.join(root, inc)):
                continue
            if dst != top:
                out.setdefault((top, dst), []).append((path, inc))
    return folders, out


def cycles(folders, graph):
    """The strongly connected components of more than one folder (Tarjan)."""
    succ = {f: sorted({b for (a, b) in graph if a == f}) for f in folders}
    index, low, stack, on, comps, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for f in sorted(folders):
        if f not in index:
            visit(f)
    return comps


def shortest_cycle(comp, graph):
    """The shortest cycle inside one strongly connected component, as
    a list of folders from its first folder in name order back to it."""
    best = None
    for start in sorted(comp):
        prev, queue = {start: None}, [start]
        while queue:
            v = queue.pop(0)
            for (a, b) in sorted(graph):
                if a != v or b not in comp:
                    continue
                if b == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    path = path[::-1] + [start]
                    if best is None or len(path) < len(best):
                        best = path
                    queue = []
                    break
                if b not in prev:
                    prev[b] = v
                    queue.append(b)
    return best


def main(argv):
    root = argv[1] if len(argv) > 1 else "."
    folders, graph = edges(root)
    folders |= {b for (_, b) in graph}
    problems = []

    print("folder graph (from -> to: includes):")
    for (a, b) in sorted(graph, key=lambda e: (RANK.get(e[0], 9), e[0], RANK.get(e[1], 9), e[1])):
        print("  %-6s -> %-6s %d" % (a, b, len(graph[(a, b)])))

    for f in sorted(folders):
        if f not in RANK:
            problems.append("folder %s/ is not in the declared order (%s)" % (f, " ".join(sorted(RANK))))
    for (a, b), where in sorted(graph.items()):
        if a not in RANK or b not in RANK:
            continue
        if RANK[b] > RANK[a]:
            for path, inc in where:
                problems.append("upward: %s includes %s (%s above %s)" % (path, inc, b, a))
        if b == "act" and a not in ACT_USERS:
            for path, inc in where:
                problems.append("only decide includes act's interface: %s includes %s" % (path, inc))
    for comp in cycles(folders, graph):
        problems.append("cycle between %s (shortest: %s):" % (", ".join(comp), " -> ".join(shortest_cycle(comp, graph))))
        for (a, b), where in sorted(graph.items()):
            if a in comp and b in comp:
                for path, inc in where:
                    problems.append("  %s includes %s" % (path, inc))

    for p in problems:
        print("include check: " + p, file=sys.stderr)
    if problems:
        return 1
    print("include check: ok, %d folders, no cycle, no upward edge" % len(folders))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

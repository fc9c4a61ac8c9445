#!/usr/bin/env python3
"""The layout rules of README's Layout section, checked on the tree: no import circle (between the
top-level modules of a crate, or between the files and subfolders of one folder), no source file
over 800 lines, and no JSON object built outside the writers (src/io, src/cli, src/experiments/report.rs).

Usage: python3 scripts/layout-check.py [--verbose]   (exit 1 when a rule is broken)

Imports are the `use crate::…`, `use super::…` trees and the `crate::a::b` paths in code, outside
comments and `#[cfg(test)]` modules; a path counts as an import of the longest module it names.
"""
import os
import re
import sys

ROOTS = ["src", "solvers/src", "python/src"]
MAX_LINES = 800
WRITERS = ("src/io/", "src/cli/", "src/experiments/report.rs", "src/main.rs")
JSON_OBJECT = re.compile(r"serde_json::Map|\bMap::new\(|Map<String|json!\(\s*\{|\[\"[a-z_0-9]+\"\]\s*=[^=]")


def modules(root):
    """{module path tuple: file} for the .rs files below root."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), root)
            parts = rel[:-3].split(os.sep)
            if parts == ["main"]:
                parts = ["<main>"]
            elif parts[-1] in ("mod", "lib"):
                parts = parts[:-1]
            out[tuple(parts)] = os.path.join(dirpath, f)
    return out


def code_of(path):
    """The file's text without comments, string literals and trailing #[cfg(test)] modules."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{.*", "", text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return "\n".join(line.split("//")[0] for line in text.splitlines())


def expand(tree):
    """Paths of a use tree: 'a::{b, c::{d}}' -> ['a::b', 'a::c::d']."""
    tree = tree.strip()
    i = tree.find("{")
    if i < 0:
        return [tree.split(" as ")[0].strip()]
    prefix, inner = tree[:i], tree[i + 1 : tree.rindex("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return [p for part in parts if part.strip() for p in expand(prefix + part.strip())]


def imports(mod, path, mods):
    """Module paths that `mod` (file `path`) imports."""
    code = code_of(path)
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", code, flags=re.S):
        paths += expand(m.group(1))
    paths += re.findall(r"(?<![\w:])(crate(?:::\w+)+)", code)
    out = set()
    for p in paths:
        segs = [s for s in p.split("::") if s]
        if not segs:
            continue
        if segs[0] == "crate":
            base, rest = (), segs[1:]
        elif segs[0] == "super":
            base, rest = mod[:-1], segs[1:]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        elif segs[0] == "self":
            base, rest = mod, segs[1:]
        else:
            continue
        target = base
        for s in rest:
            if target + (s,) not in mods:
                break
            target = target + (s,)
        if target != mod:
            out.add(target)
    return out


def cycles(nodes, edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    verbose = "--verbose" in sys.argv
    bad = False
    for root in ROOTS:
        mods = modules(root)
        # Edges between siblings: for an import a -> b, the children of their common ancestor.
        sib = {}
        for mod, path in mods.items():
            for t in imports(mod, path, mods):
                k = 0
                while k < min(len(mod), len(t)) and mod[k] == t[k]:
                    k += 1
                if k == len(mod) or k == len(t):
                    continue  # parent and descendant: a folder's mod.rs and its own files
                folder, a, b = mod[:k], mod[k], t[k]
                sib.setdefault(folder, {}).setdefault(a, set()).add(b)
        found = []
        for folder, edges in sorted(sib.items()):
            nodes = set(edges) | {b for bs in edges.values() for b in bs}
            for comp in cycles(nodes, edges):
                found.append(("::".join(folder) or "(crate)", comp))
            if verbose:
                for a in sorted(edges):
                    print(f"  {root}/{'/'.join(folder)}: {a} -> {', '.join(sorted(edges[a]))}")
        for folder, comp in found:
            bad = True
            print(f"circle in {root} {folder}: {' <-> '.join(comp)}")
        long = []
        for path in sorted(mods.values()):
            n = sum(1 for _ in open(path, encoding="utf-8"))
            if n > MAX_LINES:
                long.append((path, n))
        for path, n in long:
            bad = True
            print(f"over {MAX_LINES} lines: {path} ({n})")
        largest = max((sum(1 for _ in open(p, encoding="utf-8")), p) for p in mods.values())
        print(f"{root}: {len(mods)} files, {'no' if not found else len(found)} circles, largest {largest[1]} ({largest[0]} lines)")
    json_hits = []
    for dirpath, _, files in os.walk("src"):
        for f in files:
            path = os.path.join(dirpath, f)
            if not f.endswith(".rs") or path.startswith(WRITERS):
                continue
            for no, line in enumerate(code_of(path).splitlines(), 1):
                if JSON_OBJECT.search(line):
                    json_hits.append(f"{path}:{no}: {line.strip()}")
    for hit in json_hits:
        bad = True
        print(f"JSON object built outside the writers: {hit}")
    print(f"JSON objects built outside {', '.join(WRITERS)}: {len(json_hits)}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Checks that burn-gumbel's modules import only the ones at or below their layer, run by CI.

The layers are the table under `## Layout` in `crates/burn-gumbel/src/lib.rs`, top first: each
row names its top-level modules in backticks (`noise`, `fused`). A file belongs to the
top-level module that contains it (`fused/driver.rs` to `fused`): a folder is one module, so a
folder whose files sit on both sides of another module (an import cycle) fails.
Every `crate::` and `super::` path in its code (comments, and the tests at the bottom of a file,
left out: a test may use the public API from above) must lead to a module of its own layer or of
one below. Every module that `lib.rs` declares must be in the table, so that the table stays the
map of the crate.

Prints one line per problem and exits 1 if there is any.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "crates" / "burn-gumbel" / "src"


def module_file(path):
    """The file of module `path` (a tuple of names), or None."""
    if not path:
        return SRC / "lib.rs"
    base = SRC.joinpath(*path)
    for candidate in (base.with_suffix(".rs"), base / "mod.rs"):
        if candidate.exists():
            return candidate
    return None


def module_of(file):
    """The module path of a source file."""
    parts = file.relative_to(SRC).with_suffix("").parts
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def layers():
    """The table's modules, each with its row's index (0 at the top)."""
    doc = [l[3:].strip() for l in (SRC / "lib.rs").read_text().splitlines() if l.startswith("//!")]
    start = doc.index("## Layout")
    table = {}
    rows = [l for l in doc[start:] if l.startswith("|") and not set(l) <= set("|- ")][1:]
    for index, row in enumerate(rows):
        cells = row.strip("|").split("|")
        for token in re.findall(r"`([a-z_]+)`", "|".join(cells[1:])):
            path = tuple(token.split("::"))
            if module_file(path):
                table[path] = index
    return table, rows


def unit(path, table):
    """The top-level module of the table that `path` lies in, or None."""
    return path[:1] if path[:1] in table else None


def code_lines(text):
    """The file's lines of code: comments blanked, the tests at the bottom cut off."""
    lines = []
    for line in text.splitlines():
        if re.match(r"\s*#\[cfg\(test\)\]", line):
            # A test-only module or item: the rest of the file is tests (the crate's rule).
            break
        lines.append(re.sub(r"//.*", "", line))
    return "\n".join(lines)


def paths(code, here):
    """Every module path named by a `crate::` or `super::` path in `code`, from module `here`."""
    found = []
    # `use crate::{a, b::c}` and `use super::{x, y}`: each name of the group.
    for root, group in re.findall(r"\b(crate|super)::\{([^}]*)\}", code):
        for name in group.split(","):
            name = name.strip()
            if name:
                found.append((root, name.split("::")))
    for root, rest in re.findall(r"\b(crate|super)::((?:[A-Za-z_]\w*::)*[A-Za-z_]\w*)", code):
        found.append((root, rest.split("::")))
    for root, names in found:
        base = () if root == "crate" else here[:-1]
        while names and names[0] == "super":
            base, names = base[:-1], names[1:]
        yield base + tuple(n for n in names if re.match(r"^[a-z_][a-z0-9_]*$", n))


def main():
    table, rows = layers()
    problems = []
    declared = re.findall(r"^\s*mod ([a-z_]+);", (SRC / "lib.rs").read_text(), flags=re.M)
    for name in declared:
        if (name,) not in table:
            problems.append(f"lib.rs: module `{name}` is in no row of the layer table")
    for file in sorted(SRC.rglob("*.rs")):
        here = module_of(file)
        source = unit(here, table)
        if source is None:
            continue
        for target_path in paths(code_lines(file.read_text()), here):
            target = unit(target_path, table)
            if target is None or target == source:
                continue
            if table[target] < table[source]:
                problems.append(
                    f"{file.relative_to(ROOT)}: `{'::'.join(source)}` ({rows[table[source]].split('|')[1].strip()}) "
                    f"imports `{'::'.join(target_path)}`, in a layer above it "
                    f"({rows[table[target]].split('|')[1].strip()})")
    for problem in sorted(set(problems)):
        print(problem)
    if problems:
        print(f"check-layers: {len(set(problems))} problems", file=sys.stderr)
        return 1
    print(f"check-layers: {len(table)} modules in {len(rows)} layers, each importing only its "
          "own layer and those below")
    return 0


if __name__ == "__main__":
    sys.exit(main())

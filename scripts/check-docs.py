#!/usr/bin/env python3
"""Checks that the docs cite what exists, run by CI (.ci/run):

- every relative link and every file path in backticks of the README, CHANGELOG, docs/, bench/
  and the crates' READMEs names a file or folder of the repository;
- every file name or path in backticks of a module doc (`//!`) names a file: beside the module,
  under its crate's `src/`, or from the repository's root;
- the file table of each `mod.rs` (and `lib.rs`/`main.rs` that has one: rows that start with a
  file name in backticks) lists exactly the `.rs` files of its folder, itself left out.

Prints one line per problem and exits 1 if there is any. Paths a run writes (`runs/`, `data/`,
`target/`, `$OUT`) and patterns (`*`, `{a,b}`, `<name>`) are not files to look for.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSIONS = ("rs", "md", "sh", "py", "toml", "json", "csv", "png", "txt", "svg")
PATH = re.compile(r"^[\w.\-/]+\.(%s)$|^(crates|src|docs|bench|benches|scripts|examples|tests|\.ci)/[\w.\-/]*$" % "|".join(EXTENSIONS))
GENERATED = ("runs/", "data/", "target/", "$OUT", ".gpubin", ".gl/", "/tmp/", "~/")
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
problems = []


def candidates(token):
    """The token as a path, or None when it is a pattern, an output or no path at all."""
    token = token.strip().rstrip(":,.")
    if any(c in token for c in "*{}<>$ ") or token.startswith(GENERATED) or "://" in token:
        return None
    if token.split("/")[0] in ("runs", "data", "target"):
        return None
    return token if PATH.match(token) else None


# Where a path may be cited from besides the citing file's folder: the root, each crate, each
# crate's sources.
CRATES = sorted((ROOT / "crates").glob("*/"))
PLACES = [ROOT] + CRATES + [crate / "src" for crate in CRATES]
# A bare source file name ("driver.rs") is cited in prose and tables that name its folder
# around it: it must be the name of some source file.
SOURCES = {p.name for p in ROOT.rglob("*.rs") if "target" not in p.parts}
# Bare names of what a run writes into its folder: outputs, not files of the repository.
RUN_OUTPUTS = re.compile(r"^[\w.\-]+\.(json|png|csv|bpk|txt)$")


def exists(token, bases):
    if "/" not in token:
        if RUN_OUTPUTS.match(token):
            return True
        if token.endswith(".rs"):
            return token in SOURCES
    return any((base / token).exists() for base in bases + PLACES)


def check_markdown(path):
    text = path.read_text()
    # Fenced code is commands and output, not citations.
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    for target in LINK.findall(prose):
        target = target.split("#")[0]
        if not target or "://" in target or target.startswith("mailto:"):
            continue
        if not (path.parent / target).exists():
            problems.append(f"{path.relative_to(ROOT)}: links to {target}, which does not exist")
    for token in CODE.findall(prose):
        token = candidates(token)
        if token and not exists(token, [ROOT, path.parent]):
            problems.append(f"{path.relative_to(ROOT)}: cites `{token}`, which does not exist")


def crate_src(path):
    for parent in path.parents:
        if parent.name == "src" or parent == ROOT:
            return parent
    return ROOT


def check_module(path):
    lines = path.read_text().splitlines()
    doc = [l[3:].strip() for l in lines if l.startswith("//!")]
    bases = [path.parent, crate_src(path), ROOT]
    if path.name not in ("mod.rs", "lib.rs", "main.rs"):
        bases.insert(1, path.parent / path.stem)
    for line in doc:
        for token in CODE.findall(line):
            token = candidates(token)
            if token and not exists(token, bases):
                problems.append(f"{path.relative_to(ROOT)}: its module doc cites `{token}`, "
                                "which does not exist")
    table = {m.group(1) for line in doc for m in [re.match(r"^\|\s*`([\w.]+\.rs)`\s*\|", line)] if m}
    if not table:
        return
    folder = path.parent if path.name in ("mod.rs", "lib.rs", "main.rs") else path.parent / path.stem
    files = {p.name for p in folder.glob("*.rs")} - {path.name}
    for name in sorted(files - table):
        problems.append(f"{path.relative_to(ROOT)}: its file table leaves out {name}")
    for name in sorted(table - files):
        problems.append(f"{path.relative_to(ROOT)}: its file table lists {name}, not in "
                        f"{folder.relative_to(ROOT)}/")


def main():
    markdown = [ROOT / "README.md", ROOT / "CHANGELOG.md"]
    for folder in ("docs", "bench", "crates"):
        markdown += sorted(p for p in (ROOT / folder).rglob("*.md") if "target" not in p.parts)
    for path in markdown:
        if path.exists():
            check_markdown(path)
    for folder in ("crates", "examples", "tests", "benches"):
        for path in sorted((ROOT / folder).rglob("*.rs")):
            if "target" not in path.parts:
                check_module(path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"check-docs: {len(problems)} problems", file=sys.stderr)
        return 1
    print("check-docs: every cited path exists, every file table is complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Checks that the docs cite what exists, where they say it is; run by CI (.ci/run):

- every relative link and every file path in backticks of the README, CHANGELOG, docs/, bench/
  and the crates' READMEs names a file or folder: from the citing file's folder, from the
  repository's root, or inside the folder the text last named (a bare `driver.rs` after
  `crates/burn-gumbel/src/fused/` is that folder's);
- every file name or path in backticks of a module doc (`//!`) names a file: beside the module,
  in its own folder, under its own crate's `src/` or root, from the repository's root, or inside
  the folder the doc last named;
- the file table of each `mod.rs` (and `lib.rs`/`main.rs` that has one: rows that start with a
  file name in backticks) lists exactly the `.rs` files of its folder, itself left out.

No name is looked up across the tree: a file of another crate or folder is cited by its path.
Prints one line per problem and exits 1 if there is any. Paths under what git ignores (`runs/`,
`target/`, the downloaded MNIST), a run's outputs named bare (`metrics.csv`) and patterns (`*`,
`{a,b}`, `<name>`) are not files to look for.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSIONS = ("rs", "md", "sh", "py", "toml", "json", "csv", "png", "txt", "svg")
PATH = re.compile(r"^[\w.\-/]+\.(%s)$|^(crates|src|docs|bench|benches|scripts|examples|tests|\.ci)/[\w.\-/]*$|^[\w.\-/]+/$" % "|".join(EXTENSIONS))
GENERATED = ("$OUT", ".gpubin", ".gl/", "/tmp/", "~/")
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\n]+)`")
problems = []


def ignored(token):
    """Whether git ignores the path (what a run or a build writes), as a path from the root."""
    result = subprocess.run(["git", "check-ignore", "-q", "--no-index", token.rstrip("/")],
                            cwd=ROOT, capture_output=True)
    return result.returncode == 0


def candidates(token):
    """The token as a path, or None when it is a pattern, an output or no path at all."""
    token = token.strip().rstrip(":,.")
    if any(c in token for c in "*{}<>$ ") or token.startswith(GENERATED) or "://" in token:
        return None
    if not PATH.match(token) or ignored(token):
        return None
    return token


# Bare names of what a run writes into its folder: outputs, not files of the repository.
RUN_OUTPUTS = re.compile(r"^[\w.\-]+\.(json|png|csv|bpk|txt)$")


# The folders a run writes, named from the run's folder (`checkpoint/step-N/`).
RUN_FOLDERS = ("checkpoint/",)


def exists(token, bases):
    """Whether `token` names a file or folder from one of `bases` (and nowhere else)."""
    if ("/" not in token and RUN_OUTPUTS.match(token)) or token.startswith(RUN_FOLDERS):
        return True
    return any((base / token).exists() for base in bases)


class Context:
    """The folder the text last named (a token ending in `/`): where its bare names are looked
    for, with the folders that hold it."""

    def __init__(self, bases):
        self.bases, self.folder = bases, None

    def check(self, token):
        # The folder last named, and the folders that hold it (a table headed by `src/` that
        # went into `estimator/` goes on with `sampling.rs`): never a folder the text has not
        # named or passed through.
        named = []
        if self.folder:
            named = [self.folder] + [p for p in self.folder.parents if ROOT in p.parents]
        places = self.bases + named
        if not exists(token, places):
            return False
        if token.endswith("/"):
            self.folder = next((base / token for base in places if (base / token).is_dir()),
                               self.folder)
        return True


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
    context = Context([path.parent, ROOT])
    for token in CODE.findall(prose):
        token = candidates(token)
        if token and not context.check(token):
            problems.append(f"{path.relative_to(ROOT)}: cites `{token}`, which is not where it "
                            "says (from its folder, the root or the folder named before it)")


def crate_of(path):
    """The crate folder of a source file (the root for the examples, tests and benches)."""
    for parent in path.parents:
        if (parent / "Cargo.toml").exists():
            return parent
    return ROOT


def check_module(path):
    lines = path.read_text().splitlines()
    doc = [l[3:].strip() for l in lines if l.startswith("//!")]
    crate = crate_of(path)
    bases = [path.parent, crate / "src", crate, ROOT]
    if path.name not in ("mod.rs", "lib.rs", "main.rs"):
        bases.insert(1, path.parent / path.stem)
    context = Context(bases)
    for line in doc:
        for token in CODE.findall(line):
            token = candidates(token)
            if token and not context.check(token):
                problems.append(f"{path.relative_to(ROOT)}: its module doc cites `{token}`, "
                                "which is not where it says")
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

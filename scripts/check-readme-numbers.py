#!/usr/bin/env python3
"""Reruns the commands whose printed numbers the README and docs/ quote, and fails when they differ.

Each claim below names a command, the numbers it prints (a regex on its output) and where a page
quotes them (a regex on that file: the README's Quick start, or a page of docs/ the README
links). A change that moves the bits (a new logarithm, a new
generator) must update the README in the same commit, or CI fails here.

    scripts/check-readme-numbers.py                 # every claim
    scripts/check-readme-numbers.py --only train    # the claims of one example

Each command is the one the README gives a user, `cargo run --release --example NAME` with the
default features (flex), plus an output folder of its own (and `--quiet` where the per-epoch lines
are not needed). Not a test build's binary: the dense trainer prints other bits in a debug build
than in a release build, and the README quotes what its own command prints.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NUMBER = r"(\d+\.\d+)"
CLAIMS = [
    {
        "name": "the main job (Quick start): the categorical VAE, embedded data, 50 epochs",
        "example": "train",
        "args": ["--quiet"],
        "output": r"test negative ELBO after 50 epochs: %s nats \(hard samples\), %s \(soft\)"
        % (NUMBER, NUMBER),
        "file": "README.md",
        "quoted": r"ends,?\s+after\s+50\s+epochs[^,]*,\s+at\s+a\s+test\s+negative\s+ELBO\s+of\s+%s\s+nats\s+with\s+"
        r"hard\s+samples\s+and\s+%s\s+with\s+soft" % (NUMBER, NUMBER),
    },
    {
        "name": "the main job with Burn's Adam epsilon (1e-5), the default before 1e-8",
        "example": "train",
        "args": ["--quiet", "--adam-epsilon", "1e-5"],
        "output": r"test negative ELBO after 50 epochs: %s nats \(hard samples\), %s \(soft\)"
        % (NUMBER, NUMBER),
        "file": "docs/categorical-vae.md",
        "quoted": r"with\s+`--adam-epsilon\s+1e-5`,[^,]*,\s+which\s+it\s+used\s+before,\s+it\s+ends\s+at\s+%s\s+nats"
        r"\s+with\s+hard\s+samples\s+and\s+%s\s+with\s+soft" % (NUMBER, NUMBER),
    },
    {
        "name": "the discrete VAE, embedded data, 2 epochs",
        "example": "discrete_vae",
        "args": ["--epochs", "2", "--plain"],
        "output": r"test negative ELBO: %s nats \(hard codes\), %s \(soft\); reconstruction %s "
        r"\+ KL %s" % (NUMBER, NUMBER, NUMBER, NUMBER),
        "file": "docs/discrete-vae.md",
        "quoted": r"\| discrete VAE, `K = 64` \| embedded, 2 epochs \(200\) \| %s \| %s \| %s \| %s \|"
        % (NUMBER, NUMBER, NUMBER, NUMBER),
    },
]


def run(claim):
    with tempfile.TemporaryDirectory(prefix=f"readme-{claim['example']}-") as out:
        return run_in(claim, Path(out) / "run")


def run_in(claim, out):
    args = claim["args"] + ["--out", str(out)]
    command = ["cargo", "run", "--release", "--quiet", "--example", claim["example"], "--"] + args
    # The user's environment, less what would pick another backend than the default build's.
    env = {k: v for k, v in os.environ.items() if k != "BURN_GUMBEL_BACKEND"}
    print(f"$ {' '.join(command)}", flush=True)
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"check-readme-numbers: {claim['example']} exited with {result.returncode}:\n"
                 f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
    found = re.search(claim["output"], result.stdout)
    if not found:
        sys.exit(f"check-readme-numbers: {claim['example']} printed no line matching "
                 f"{claim['output']!r}:\n{result.stdout[-2000:]}")
    return found.groups()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="the example of the one claim to check")
    options = parser.parse_args()
    failed = 0
    for claim in CLAIMS:
        if options.only and claim["example"] != options.only:
            continue
        quoted = re.search(claim["quoted"], (ROOT / claim["file"]).read_text())
        if not quoted:
            sys.exit(f"check-readme-numbers: {claim['file']} no longer quotes {claim['name']} "
                     f"(nothing matches {claim['quoted']!r})")
        printed = run(claim)
        if printed == quoted.groups():
            print(f"ok: {claim['name']}: {' / '.join(printed)}")
        else:
            failed += 1
            print(f"DIFFERENT: {claim['name']}: the command prints {' / '.join(printed)}, "
                  f"{claim['file']} says {' / '.join(quoted.groups())}")
    if failed:
        sys.exit(f"check-readme-numbers: {failed} of the quoted numbers are not what their "
                 "commands print: rerun them and update the page that quotes them")


if __name__ == "__main__":
    main()

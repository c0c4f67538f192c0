#!/usr/bin/env python3
"""Reruns the commands whose printed numbers the README quotes, and fails when they differ.

Each claim below names a command, the numbers it prints (a regex on its output) and where the
README quotes them (a regex on README.md). A change that moves the bits (a new logarithm, a new
generator) must update the README in the same commit, or CI fails here.

    scripts/check-readme-numbers.py                       # builds and runs with cargo, release
    scripts/check-readme-numbers.py --bin target/debug    # the binaries a `cargo test` built

The examples are run on flex (`BURN_GUMBEL_BACKEND=flex`), the backend the README's numbers are
measured on. Their floating-point arithmetic is IEEE, without fast-math, so an optimized and an
unoptimized build print the same bits (checked by running both once).
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
        "readme": r"ends\s+at a test negative ELBO of %s nats with hard samples and %s with soft"
        % (NUMBER, NUMBER),
    },
    {
        "name": "the main job with Burn's Adam epsilon (1e-5), the default before 1e-8",
        "example": "train",
        "args": ["--quiet", "--adam-epsilon", "1e-5"],
        "output": r"test negative ELBO after 50 epochs: %s nats \(hard samples\), %s \(soft\)"
        % (NUMBER, NUMBER),
        "readme": r"with soft ones; %s and\s+%s with `--adam-epsilon 1e-5`" % (NUMBER, NUMBER),
    },
    {
        "name": "the discrete VAE, embedded data, 2 epochs",
        "example": "discrete_vae",
        "args": ["--epochs", "2", "--plain"],
        "output": r"test negative ELBO: %s nats \(hard codes\), %s \(soft\); reconstruction %s "
        r"\+ KL %s" % (NUMBER, NUMBER, NUMBER, NUMBER),
        "readme": r"\| discrete VAE, `K = 64` \| embedded, 2 epochs \(200\) \| %s \| %s \| %s \| %s \|"
        % (NUMBER, NUMBER, NUMBER, NUMBER),
    },
]


def run(claim, bin_dir):
    with tempfile.TemporaryDirectory(prefix=f"readme-{claim['example']}-") as out:
        return run_in(claim, bin_dir, Path(out) / "run")


def run_in(claim, bin_dir, out):
    args = claim["args"] + ["--out", str(out)]
    if bin_dir:
        command = [str(Path(bin_dir) / "examples" / claim["example"])] + args
    else:
        command = ["cargo", "run", "--release", "--quiet", "--example", claim["example"], "--"] + args
    env = dict(os.environ, BURN_GUMBEL_BACKEND="flex")
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
    parser.add_argument("--bin", help="the folder of built binaries (its examples/ is run)")
    parser.add_argument("--only", help="the example of the one claim to check")
    options = parser.parse_args()
    readme = (ROOT / "README.md").read_text()
    failed = 0
    for claim in CLAIMS:
        if options.only and claim["example"] != options.only:
            continue
        quoted = re.search(claim["readme"], readme)
        if not quoted:
            sys.exit(f"check-readme-numbers: the README no longer quotes {claim['name']} "
                     f"(nothing matches {claim['readme']!r})")
        printed = run(claim, options.bin)
        if printed == quoted.groups():
            print(f"ok: {claim['name']}: {' / '.join(printed)}")
        else:
            failed += 1
            print(f"DIFFERENT: {claim['name']}: the command prints {' / '.join(printed)}, "
                  f"the README says {' / '.join(quoted.groups())}")
    if failed:
        sys.exit(f"check-readme-numbers: {failed} of the README's numbers are not what their "
                 "commands print: rerun them and update the README")


if __name__ == "__main__":
    main()

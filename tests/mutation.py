"""Runs mutmut's mutants, each in a fresh process: python tests/mutation.py [--jobs N] [PATTERN ...]

Why not `mutmut run` alone: mutmut 3 runs every mutant in a process forked from one that has already run JAX,
and XLA's thread pools do not survive a fork, so a mutant whose tests compile a program hangs and is counted as
a timeout. Here mutmut only generates the mutants and maps each function to the tests that reach it:

    mutmut run "nothing"             # mutants/ and its stats; then it stops: "nothing matches" (no mutant run)
    python tests/mutation.py         # every mutant not yet checked; PATTERN: fnmatch on mutant names
    python tests/mutation.py --rerun --also tests/test_x.py "NAME"   # a survivor again, with a test added since
    mutmut results                   # what survived; `mutmut show NAME` for a mutant's diff

Outcomes are written where `mutmut results` reads them (mutants/**/*.meta) with mutmut's exit codes.
"""

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

MUTANTS = Path("mutants")
KILLED, NO_TESTS, TIMEOUT = 1, 33, 36  # mutmut's exit codes for "killed", "no tests" and "timeout"


def run_mutant(name: str, tests: list[str], seconds: float, pytest_args: list[str]) -> int:
    """mutmut's exit code for `tests` run with mutant `name` active: 1 killed, 0 survived, 36 timeout."""
    if not tests:
        return NO_TESTS
    # Every test in its own process, the bit-for-bit ones too (tests/conftest.py), unless asked otherwise:
    # PATHPROBE_TEST_CODEGEN=fast compiles faster and skips those (re-run the survivors without it).
    codegen = os.environ.get("PATHPROBE_TEST_CODEGEN", "production")
    env = os.environ | {"MUTANT_UNDER_TEST": name, "PATHPROBE_TEST_CODEGEN": codegen}
    command = [sys.executable, "-m", "pytest", "-q", "-x", *pytest_args, *tests]
    try:
        code = subprocess.run(command, cwd=MUTANTS, env=env, capture_output=True, timeout=seconds).returncode
    except subprocess.TimeoutExpired:
        return TIMEOUT
    # pytest: 1 a test failed; 2 a test module failed to import, 4 then its test ids are not found (a mutant
    # that breaks code a test module runs at import): red either way.
    return KILLED if code in (1, 2, 3, 4) else code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("patterns", nargs="*", default=["*"], help="mutant names to run (fnmatch); default all")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once")
    parser.add_argument("--rerun", action="store_true", help="also run mutants that already have an outcome")
    parser.add_argument(
        "--also", action="append", default=[], metavar="TEST",
        help="a test (file or node id) run for every mutant besides the tests mutmut mapped to it, its file copied "
        "into mutants/ first: a test added since the mutants were generated; repeat for several",
    )  # fmt: skip
    args = parser.parse_args()
    for test in args.also:
        if not Path(test.partition("::")[0]).is_file():
            parser.error(f"--also {test}: no such test file")
    stats = json.loads((MUTANTS / "mutmut-stats.json").read_text())
    pytest_args = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["mutmut"].get("pytest_add_cli_args", [])
    metas = {path: json.loads(path.read_text()) for path in MUTANTS.rglob("*.meta")}
    todo = [
        (path, name)
        for path, meta in metas.items()
        for name, code in meta["exit_code_by_key"].items()
        if (code is None or args.rerun) and any(fnmatch.fnmatch(name, p) for p in args.patterns)
    ]

    for test in args.also:  # the mutants' copy of the tests predates them
        file = test.partition("::")[0]
        shutil.copy(file, MUTANTS / file)

    def check(item):
        path, name = item
        durations = stats["duration_by_test"]
        tests = stats["tests_by_mangled_function_name"].get(name.rpartition("__mutmut_")[0], [])
        tests = sorted(tests, key=lambda t: durations.get(t, 1.0))  # fast ones first: -x stops at the first kill
        tests += [t for t in args.also if t not in tests]
        seconds = 60 + 10 * sum(durations.get(t, 1.0) for t in tests)
        return path, name, run_mutant(name, tests, seconds, pytest_args)

    with ThreadPoolExecutor(args.jobs) as pool:
        for path, name, code in tqdm(pool.map(check, todo), total=len(todo), desc="mutants", unit="mutant"):
            metas[path]["exit_code_by_key"][name] = code
            path.write_text(json.dumps(metas[path]))  # after each: a stopped run keeps what it measured
            if code == 0:
                tqdm.write(f"survived: {name}")


if __name__ == "__main__":
    main()

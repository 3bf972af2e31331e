import atexit
import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

# pytest-xdist runs the suite in worker processes (addopts in pyproject.toml) that inherit the environment of
# the process that starts them; this names the worker, and is unset in that process or without xdist.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")

# The suite compiles hundreds of small programs and runs each a few steps, so compiling is most of its time: at
# LLVM -O0 the CPU backend compiles ~2.5x faster (the tiny preset's batch sampler: 83 s -> 30 s, its 20 draws
# 0.1 s -> 0.2 s), and with XLA's older CPU emitters ~45% faster again (the graph generator: 2.8 s -> 1.3 s; a
# cold tiny run: 94 -> 66 s of CPU). Under the older emitters a floating-point sum depends on the program around
# it, so the tests that compare programs of different shapes bit for bit (members trained together vs. one at a
# time, a consistency term at weight 0 vs. none; marked `production_codegen`) are skipped here and run, with the
# default emitters as a user's run compiles, in a pytest of their own (tests/test_production_codegen.py); with
# PATHPROBE_TEST_CODEGEN=production every test runs with the default emitters. Every process a test starts
# compiles under this process's flags: the numbers the tests compare are made under the same ones.
PRODUCTION_CODEGEN = os.environ.get("PATHPROBE_TEST_CODEGEN") == "production"
OPT_0, OLDER_EMITTERS = "--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false"
TEST_XLA_FLAGS = OPT_0 if PRODUCTION_CODEGEN else f"{OPT_0} {OLDER_EMITTERS}"
# The user's own flags kept, ours set anew: a pytest started by a test inherits ours, the older emitters too.
USER_XLA_FLAGS = [f for f in os.environ.get("XLA_FLAGS", "").split() if f not in (OPT_0, OLDER_EMITTERS)]
os.environ["XLA_FLAGS"] = " ".join([*USER_XLA_FLAGS, TEST_XLA_FLAGS])


def command_env(store=None, *flags: str) -> dict[str, str]:
    """The environment of a command a test starts, with XLA `flags` of its own; `store`: its own store of
    pretrained models instead of the session's."""
    env = {**os.environ, "XLA_FLAGS": " ".join([os.environ["XLA_FLAGS"], *flags])}
    return env if store is None else {**env, "PATHPROBE_PRETRAINED": str(store)}


# Subprocess CLIs started by the tests share one compilation cache, so each program compiles once per run.
os.environ.setdefault("PATHPROBE_CACHE", os.path.join(tempfile.gettempdir(), "pathprobe-test-cache"))
# Every program, however fast it compiles: at -O0 most compile in under the default 0.5 s, and each test module
# and subprocess would compile them again.
os.environ.setdefault("PATHPROBE_CACHE_MIN_SECS", "0")
# ... and one store of pretrained models, new for each test session and shared by its workers (never the
# user's; the store locks a key while one process pretrains it): a test that must pretrain passes a store of
# its own. The process that makes it removes it when it exits, after its workers.
if WORKER is None or "PATHPROBE_TEST_STORE" not in os.environ:
    os.environ["PATHPROBE_TEST_STORE"] = tempfile.mkdtemp(prefix="pathprobe-test-pretrained-")
    atexit.register(shutil.rmtree, os.environ["PATHPROBE_TEST_STORE"], ignore_errors=True)
os.environ["PATHPROBE_PRETRAINED"] = os.environ["PATHPROBE_TEST_STORE"]


from common.cli import enable_compilation_cache  # noqa: E402

enable_compilation_cache()


import gc  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from experiment.rundir import read_log  # noqa: E402

# Drawing is a third of a tiny run: the runs whose figures a test reads ask for them (--plots).
TINY = ["--preset", "tiny", "--no-plots"]


def pytest_collection_modifyitems(items):
    """The tests marked slow (a minute or more each, most of it subprocess runs and compilation) first, in their
    order: the workers take tests in turn, so the longest start early and none is left to run alone at the end.
    The tests marked production_codegen are skipped here unless this process compiles with the default emitters."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if not PRODUCTION_CODEGEN:
        skip = pytest.mark.skip(reason="bit for bit across programs: run by tests/test_production_codegen.py")
        for item in items:
            if item.get_closest_marker("production_codegen"):
                item.add_marker(skip)


@pytest.fixture(autouse=True, scope="module")
def release_compiled_programs():
    """Frees each test module's compiled programs after it. A CPU executable holds memory mappings, and one
    process running the whole suite kept ~63,000 of them, at the kernel's limit per process
    (vm.max_map_count, 65,530 by default), past which XLA segfaults while compiling."""
    yield
    jax.clear_caches()
    gc.collect()


def run_script(script: str, *args: str, store=None) -> subprocess.CompletedProcess:
    """Runs a command line; `store`: its own store of pretrained models instead of the session's."""
    env = command_env(store)
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=900, env=env)


@contextmanager
def exclusive(path: Path):
    """Holds an exclusive lock on the file `path` (made if missing) across processes."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A complete tiny experiment: pretraining, every variant x 2 seeds, evaluation. Made once per test session:
    the first worker to ask makes it in the directory all workers share, the others wait for it and read it."""
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if WORKER else shared
    base, done = shared / "tiny", shared / "tiny.done"
    with exclusive(shared / "tiny.lock"):
        if not done.exists():
            shutil.rmtree(base, ignore_errors=True)
            result = run_script(
                "train.py", *TINY, "--plots", "--run-dir", str(base / "run"), "--results-dir", str(base / "results")
            )
            assert result.returncode == 0, result.stderr
            done.touch()
    return base


# A graph small enough to check by hand: path s=1 - 2 - 3 - 4=t, vertex 5 hangs off 2; ids 1..6 (6 absent).
# d(s,t) = 3. HAND_FROM_S / HAND_FROM_T are the true d(s,v) and d(t,v) for ids 1..6 (0 for the absent id).
HAND_VOCAB = 6
HAND_GRAPH = {
    "edges": np.array([[[1, 2], [2, 3], [3, 4], [2, 5], [0, 0]]]),
    "edge_mask": np.array([[True] * 4 + [False]]),
    "s": np.array([1]),
    "t": np.array([4]),
    "path": np.array([[1, 2, 3, 4, 0]]),
    "path_len": np.array([4]),
}
HAND_FROM_S = [0, 1, 2, 3, 2, 0]
HAND_FROM_T = [3, 2, 1, 0, 3, 0]


def without_oracle(table: dict) -> dict:
    """A variant's table by size or distance without what only a run with its oracle has: the PGR by size and
    whether the oracle is a ceiling at each distance."""
    return {key: {k: v for k, v in row.items() if k not in ("pgr", "ceiling_ok")} for key, row in table.items()}


def log_records(run_dir) -> list[tuple]:
    """(phase, step, loss, acc) of every line of a run's log.jsonl, in order."""
    return [(r["phase"], r["step"], r["loss"], r["acc"]) for r in read_log(run_dir)]

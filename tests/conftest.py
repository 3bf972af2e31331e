import atexit
import os
import shutil
import tempfile

# Subprocess CLIs started by the tests share one compilation cache, so each program compiles once per run.
os.environ.setdefault("PATHPROBE_CACHE", os.path.join(tempfile.gettempdir(), "pathprobe-test-cache"))
# ... and one store of pretrained models, new for each test session (never the user's): a test that must
# pretrain passes a store of its own.
os.environ["PATHPROBE_PRETRAINED"] = tempfile.mkdtemp(prefix="pathprobe-test-pretrained-")
atexit.register(shutil.rmtree, os.environ["PATHPROBE_PRETRAINED"], ignore_errors=True)

from common.cli import enable_compilation_cache  # noqa: E402

enable_compilation_cache()


import gc  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from experiment.rundir import read_log  # noqa: E402

TINY = ["--preset", "tiny"]


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
    env = None if store is None else {**os.environ, "PATHPROBE_PRETRAINED": str(store)}
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=900, env=env)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A complete tiny experiment: pretraining, every variant x 2 seeds, evaluation."""
    base = tmp_path_factory.mktemp("tiny")
    result = run_script("train.py", *TINY, "--run-dir", str(base / "run"), "--results-dir", str(base / "results"))
    assert result.returncode == 0, result.stderr
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


def log_records(run_dir) -> list[tuple]:
    """(phase, step, loss, acc) of every line of a run's log.jsonl, in order."""
    return [(r["phase"], r["step"], r["loss"], r["acc"]) for r in read_log(run_dir)]

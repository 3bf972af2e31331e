import os
import tempfile

# Subprocess CLIs started by the tests share one compilation cache, so each program compiles once per run.
os.environ.setdefault("PATHPROBE_CACHE", os.path.join(tempfile.gettempdir(), "pathprobe-test-cache"))

from common.cli import enable_compilation_cache  # noqa: E402

enable_compilation_cache()


import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

TINY = ["--preset", "tiny"]


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A complete tiny experiment: pretraining, every variant x 2 seeds, evaluation."""
    base = tmp_path_factory.mktemp("tiny")
    result = run_script("train.py", *TINY, "--run-dir", str(base / "run"), "--results-dir", str(base / "results"))
    assert result.returncode == 0, result.stderr
    return base

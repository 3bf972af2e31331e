"""The tests that compare programs of different shapes bit for bit (marked `production_codegen`), in a pytest of
their own that compiles as a user's run does: with XLA's default CPU emitters. The other test processes compile
with the older emitters, ~45% faster, under which a floating-point sum depends on the program around it
(tests/conftest.py)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PRODUCTION_CODEGEN, command_env

TESTS = Path(__file__).parent


@pytest.mark.slow
@pytest.mark.skipif(PRODUCTION_CODEGEN, reason="this process compiles with the default emitters: they run here")
def test_the_bit_for_bit_tests_pass_with_the_default_emitters(tmp_path):
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-m", "production_codegen"]
    marked = [str(p) for p in sorted(TESTS.glob("test_*.py")) if "@pytest.mark.production_codegen\n" in p.read_text()]
    command += ["-rfE", "--basetemp", str(tmp_path / "pytest"), *marked]
    env = {**command_env(), "PATHPROBE_TEST_CODEGEN": "production"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert re.search(r"\b4 passed", result.stdout), result.stdout[-2000:]  # every marked test ran, none skipped

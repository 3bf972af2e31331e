"""Several processes, one job, for real: two local train.py processes joined by jax.distributed over the loopback
address (CPU collectives, gloo), one device each, train the tiny preset into one shared run directory and a
shared store, and end with exactly the log and numbers of one process with two devices. The primary process
alone writes the shared files."""

import json
import shutil
import socket
import subprocess
import sys

import pytest
from conftest import TINY, command_env

VARIANTS = ["--experiment.variants", "frozen", "--experiment.seeds", "1"]  # pretraining and one fine-tuning


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_lines(run_dir) -> list[tuple]:
    return [(r["phase"], r["step"], r["loss"], r["acc"]) for r in map(json.loads, (run_dir / "log.jsonl").open())]


@pytest.mark.slow
def test_two_processes_train_one_run_to_the_numbers_of_one_process_with_two_devices(tmp_path):
    reference, reference_results = tmp_path / "reference", tmp_path / "reference-results"
    # First, and into the compilation cache the job could read: a job that loaded the programs cached by a
    # one-process run with as many devices hung at its first host sync (train.py --distributed keeps the
    # cache off).
    one_env = command_env(tmp_path / "reference-store", "--xla_force_host_platform_device_count=2")  # two devices
    one = subprocess.run(
        [sys.executable, "train.py", *TINY, *VARIANTS, "--run-dir", str(reference), "--results-dir",
         str(reference_results)], env=one_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]

    run, results = tmp_path / "run", tmp_path / "results"
    # The job reads the reference's evaluation set (the same bytes it would generate: its hash is pinned and
    # compared below) instead of compiling the generator again with the compilation cache off.
    run.mkdir()
    shutil.copy(reference / "eval_set.npz", run / "eval_set.npz")
    env = command_env(tmp_path / "store")  # one CPU device per process
    job = [*TINY, *VARIANTS, "--run-dir", str(run), "--results-dir", str(results), "--distributed"]
    job += ["--coordinator", f"127.0.0.1:{free_port()}", "--num-processes", "2"]
    processes = [
        subprocess.Popen(
            [sys.executable, "train.py", *job, "--process-id", str(i)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in (1, 0)
    ]
    try:
        outputs = [p.communicate(timeout=300) for p in processes]
    finally:  # a hung job (collectives that never meet) fails here, not at CI's time limit
        for p in processes:
            p.kill()
    for p, (_, err) in zip(processes, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert "results:" in outputs[1][1] and "results:" not in outputs[0][1]  # the primary alone reports

    assert log_lines(run) == log_lines(reference)  # every logged step, once (not once per process)
    assert len(log_lines(run)) == 6
    job_summary = json.loads((results / "summary.json").read_text())
    one_summary = json.loads((reference_results / "summary.json").read_text())
    assert job_summary["provenance"]["device_count"] == one_summary["provenance"]["device_count"] == 2
    assert job_summary["eval_set_hash"] == one_summary["eval_set_hash"]
    assert job_summary["pretrained"]["params_sha256"] == one_summary["pretrained"]["params_sha256"]
    assert job_summary["capability"] == one_summary["capability"]
    assert job_summary["variants"] == one_summary["variants"]
    (store_log,) = (tmp_path / "store").glob("*/log.jsonl")
    steps = [(r["phase"], r["step"]) for r in map(json.loads, store_log.open())]
    assert len(steps) == len(set(steps)) == 4  # the store's log too: each pretraining step logged once

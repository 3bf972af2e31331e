"""Nothing lost, nothing silently wrong: kill and resume, determinism, guarded results, provenance, corrupt
files, non-finite losses. Training runs reuse the session's `finished_run` wherever a copy will do."""

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import partial

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import TINY, command_env, log_records, run_script
from tqdm import tqdm

from common.provenance import PACKAGES, code_version
from configs import PRESETS
from experiment.fit import _guard_finite
from experiment.rundir import PhaseFiles, RunError, finetune_seeds, phase_name
from graphgen.dataset import load, save

train = partial(run_script, "train.py")
evaluate = partial(run_script, "eval.py")
ORBAX_TMP = "checkpoints/*/*.orbax-checkpoint-tmp"  # what orbax writes into before renaming to checkpoints/P/STEP


def summary(results) -> dict:
    return json.loads((results / "summary.json").read_text())


def one_line_exit_2(result: subprocess.CompletedProcess, *needles: str, progress: bool = False) -> None:
    """Exit 2, no traceback, and the error is one line naming the problem. With progress=True, the run got as far
    as training: the progress bar's lines may come first, the error must be the last line."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and (len(lines) == 1 or progress), result.stderr
    assert [line for line in lines if "error:" in line] == lines[-1:], result.stderr
    for needle in needles:
        assert needle in lines[-1], result.stderr


def kill_when(argv: list[str], moment, store, timeout: float = 300) -> None:
    """Starts train.py, freezes it (SIGSTOP) as soon as `moment()` is seen, and SIGKILLs it if `moment()` still
    holds with the process frozen; otherwise lets it go on. Freezing first makes "killed while X" a fact the
    test checked, not a race it hoped to win. Fails if the run ends before such a moment."""
    # stderr to a file, not a pipe: tqdm's output would fill a pipe nobody reads and block the run.
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "train.py", *argv], stdout=subprocess.DEVNULL, stderr=stderr, env=command_env(store)
        )
        deadline = time.monotonic() + timeout
        try:
            while process.poll() is None and time.monotonic() < deadline:
                if moment():
                    process.send_signal(signal.SIGSTOP)
                    if moment():
                        return
                    process.send_signal(signal.SIGCONT)
                time.sleep(0.002)
            stderr.seek(0)
            pytest.fail(f"train.py ended (rc={process.poll()}) before the moment to kill it: {stderr.read()[-2000:]}")
        finally:
            process.kill()  # SIGKILL, also of a frozen process
            process.wait()


@pytest.mark.slow
def test_killed_mid_checkpoint_write_and_mid_run_resumes_to_the_same_numbers(finished_run, tmp_path):
    """SIGKILL twice: first while orbax is writing a pretraining checkpoint into the store of pretrained
    models (its temporary directory on disk), then in the middle of fine-tuning. `--resume` then ends with
    the log and the metrics of the uninterrupted run, which pretrained in another store. Two of its variants
    keep it short, each trained alone there too (an encoder-training variant shares no program), so their
    programs are the uninterrupted run's (tests/conftest.py); members resumed: tests/test_members.py."""
    run, results, store = tmp_path / "run", tmp_path / "results", tmp_path / "store"
    names = ["trainable", "trainable+dst"]
    argv = [*TINY, "--experiment.variants", ",".join(names), "--run-dir", str(run), "--results-dir", str(results)]

    kill_when(argv, lambda: any(store.glob(f"*/{ORBAX_TMP}")), store)
    assert list(store.glob(f"*/{ORBAX_TMP}")), "the first kill must leave a half-written checkpoint behind"

    log = run / "log.jsonl"  # written once the pretraining in the store is finished and copied into the run
    kill_when([*argv, "--resume"], lambda: log.exists() and "trainable-seed100" in log.read_text(), store)
    assert not (results / "summary.json").exists()

    # A results dir holding this same experiment's summary (config, evaluation set) may be rewritten: empty
    # its variants to see that it is.
    shutil.copytree(finished_run / "results", results, dirs_exist_ok=True)
    stale = summary(results)
    (results / "summary.json").write_text(json.dumps({**stale, "variants": {}}))

    result = train(*argv, "--resume", store=store)
    assert result.returncode == 0, result.stderr
    assert not list(results.glob("*.png"))  # (--no-plots) and none of the copied figures left beside new numbers
    assert not list(run.glob(ORBAX_TMP)) and not list(store.glob(f"*/{ORBAX_TMP}"))
    phases = ("pretrain", *(phase_name(name, seed) for name in names for seed in finetune_seeds(PRESETS["tiny"])))
    uninterrupted_log = [r for r in log_records(finished_run / "run") if r[0] in phases]
    assert log_records(run) == uninterrupted_log  # every logged loss, none twice
    resumed, uninterrupted = summary(results), summary(finished_run / "results")
    assert list(resumed["variants"]) == ["trivial", "self", *names]
    assert resumed["variants"] == {name: uninterrupted["variants"][name] for name in resumed["variants"]}
    # (the probes' capability rows come with the probes, which this run leaves out)
    assert resumed["capability"] == {k: v for k, v in uninterrupted["capability"].items() if "probe" not in k}


def test_same_config_and_seed_give_identical_metrics(finished_run, tmp_path):
    """Determinism: a second run of the tiny config (one variant, to keep it short: an encoder-training one,
    which the first run trained alone too), pretraining again in a store of its own, reproduces the first
    one's numbers exactly."""
    results, store = tmp_path / "results", tmp_path / "store"
    argv = [
        *TINY,
        "--experiment.variants",
        "trainable",
        "--run-dir",
        str(tmp_path / "run"),
        "--results-dir",
        str(results),
    ]
    result = train(*argv, store=store)
    assert result.returncode == 0, result.stderr
    again, first = summary(results), summary(finished_run / "results")
    assert again["pretrained"]["trained_by_this_run"] and again["pretrained"]["store"].startswith(str(store))
    assert again["pretrained"]["params_sha256"] == first["pretrained"]["params_sha256"]
    assert again["eval_set_hash"] == first["eval_set_hash"]
    for name in ("d_st_acc_by_size", "d_st_acc_by_distance"):
        assert again["capability"][name] == first["capability"][name]
    assert list(again["variants"]) == ["trivial", "self", "trainable"]
    for name in again["variants"]:  # (the tiny preset has no ceiling for `trainable`: no pgr in either run)
        assert again["variants"][name] == first["variants"][name]


def test_summary_records_code_packages_and_device(finished_run):
    provenance = summary(finished_run / "results")["provenance"]
    assert set(provenance["packages"]) == {"python", *PACKAGES}
    assert all(provenance["packages"].values())
    assert provenance["backend"] == "cpu" and provenance["device_kind"] and provenance["device_count"] >= 1
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert provenance["code"]["commit"] == head.stdout.strip()
        assert isinstance(provenance["code"]["dirty"], bool)
    else:
        assert provenance["code"] is None


def test_code_version_is_none_outside_a_git_checkout(tmp_path):
    assert code_version(tmp_path) is None


def test_code_is_dirty_when_code_changes_not_when_results_do(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "results" / "summary.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    assert code_version(tmp_path.resolve())["dirty"] is False
    (tmp_path / "results" / "summary.json").write_text('{"new": 1}\n')
    assert code_version(tmp_path.resolve())["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert code_version(tmp_path.resolve())["dirty"] is True


@pytest.fixture
def run_copy(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run / "run", run)
    return run


def test_results_of_another_experiment_are_not_replaced(finished_run, run_copy, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(finished_run / "results", results)
    original = summary(results)
    other_config = {**original["config"], "data": {**original["config"]["data"], "n_max": 7}}
    cases = {
        "data.n_max": {**original, "config": other_config},
        "a different evaluation set": {**original, "eval_set_hash": "0" * 64},
    }
    for needle, old in cases.items():
        (results / "summary.json").write_text(json.dumps(old))
        before = {p.name: p.read_bytes() for p in results.iterdir()}
        one_line_exit_2(evaluate("--run", str(run_copy), "--results", str(results)), needle, "--overwrite")
        assert {p.name: p.read_bytes() for p in results.iterdir()} == before

    # train.py refuses before it trains or writes anything (the config is known up front).
    (results / "summary.json").write_text(json.dumps(cases["data.n_max"]))
    new_run = tmp_path / "new_run"
    one_line_exit_2(train(*TINY, "--run-dir", str(new_run), "--results-dir", str(results)), "data.n_max")
    assert not new_run.exists()

    result = evaluate("--run", str(run_copy), "--results", str(results), "--overwrite", "--no-plots")
    assert result.returncode == 0, result.stderr
    assert summary(results)["variants"] == original["variants"]


def test_corrupt_or_swapped_run_files_are_one_line_exit_2(run_copy, tmp_path):
    out = tmp_path / "out"
    # Truncated checkpoint: the OCDBT data file of the last pretraining checkpoint's parameters cut in half.
    (checkpoint,) = (run_copy / "checkpoints" / "pretrain" / "20" / "params" / "d").iterdir()
    checkpoint.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    one_line_exit_2(evaluate("--run", str(run_copy), "--results", str(out)), "cannot restore checkpoint")
    one_line_exit_2(train(*TINY, "--resume", "--run-dir", str(run_copy), "--results-dir", str(out)), "cannot restore")
    assert not (out / "summary.json").exists()

    # A valid evaluation set, but not the one this run recorded: results on it must not mix with the others.
    eval_set = run_copy / "eval_set.npz"
    arrays = load(eval_set)
    save(eval_set, {k: v if k == "family_names" else v[::-1] for k, v in arrays.items()})
    one_line_exit_2(evaluate("--run", str(run_copy), "--results", str(out)), "eval_set.sha256")

    # Truncated dataset file.
    eval_set.write_bytes(eval_set.read_bytes()[:-100])
    one_line_exit_2(evaluate("--run", str(run_copy), "--results", str(out)), "not a readable .npz")
    assert not list(out.iterdir())  # train.py made the directory up front; nothing was written into it


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_finite_metrics_with_non_finite_parameters_stop_the_run_before_their_checkpoint(bad, tmp_path):
    """A checkpoint step whose loss and accuracy are finite while the updated parameters are not (an update that
    overflowed where the loss did not look): the run stops and the last good checkpoint stays the latest, whole."""
    files = PhaseFiles(tmp_path, ["pretrain"])
    good, opt_state = {"w": np.ones(3, np.float32)}, {"mu": np.zeros(3, np.float32)}
    files.save(0, 1, good, opt_state)
    metrics, broken = [{"loss": 0.5, "acc": 1.0}], {"w": np.array([1, bad, 1], np.float32)}
    _guard_finite(files, tqdm(disable=True), 2, metrics, {"w": np.full(3, 2, np.float32)})  # controls: finite
    _guard_finite(files, tqdm(disable=True), 2, metrics)  # ... and no checkpoint at this step
    with pytest.raises(RunError, match=r"^pretrain: non-finite loss or parameters at step 2 .*checkpoint kept"):
        _guard_finite(files, tqdm(disable=True), 2, metrics, broken)
    assert files.latest_step() == 1
    assert np.array_equal(files.restore(0, 1, good, opt_state)["params"]["w"], good["w"])


def test_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    run, results, store = tmp_path / "run", tmp_path / "results", tmp_path / "store"
    argv = [*TINY, "--pretrain.lr", "1e30", "--pretrain.checkpoint_every", "1", "--run-dir", str(run)]
    argv += ["--results-dir", str(results)]
    result = train(*argv, store=store)
    one_line_exit_2(result, "pretrain: non-finite loss", progress=True)
    (checkpoints,) = store.glob("*/checkpoints/pretrain")
    steps = sorted(int(p.name) for p in checkpoints.iterdir())
    failed_at = int(result.stderr.split("at step ")[1].split()[0])
    assert steps and steps[-1] < failed_at
    kept = ocp.StandardCheckpointer().restore(checkpoints / str(steps[-1]) / "params")
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(kept))
    assert not list(store.glob(f"*/{ORBAX_TMP}")) and not (results / "summary.json").exists()
    assert not (checkpoints.parent.parent / "done.json").exists()  # a failed pretraining is never reused
    # The kept checkpoint is whole: resuming from it reaches the same failure, not a restore error.
    again = train(*argv, "--resume", store=store)
    one_line_exit_2(again, f"at step {failed_at} ", progress=True)

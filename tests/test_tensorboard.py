"""Training curves in TensorBoard: every phase's event files hold exactly the numbers of log.jsonl, also after a
resume. A tiny pretraining and one consistency-trained reporter, in this process (seconds)."""

import shutil

import pytest
from flax import nnx

from configs import PRESETS
from experiment.events import phase_dir, read_scalars
from experiment.phases import finetune, pretrain
from experiment.plots import plot_training_curves
from experiment.rundir import PRETRAIN, read_log
from models.consistency import CONDITIONS
from models.objectives import PRETRAINED

VARIANT = "frozen@bellman"
CFG = PRESETS["tiny"].replace(experiment={"seeds": 1, "variants": VARIANT})


def logged_as_events(run_dir, phase: str) -> dict[str, list[tuple[int, float]]]:
    """log.jsonl's lines of `phase` in the reader's form: tag -> [(step, value)], as float32 like the events."""
    import numpy as np

    scalars: dict[str, list[tuple[int, float]]] = {}
    for record in read_log(run_dir):
        if record["phase"] == phase:
            for tag, value in record.items():
                if tag not in ("phase", "step"):
                    scalars.setdefault(tag, []).append((record["step"], float(np.float32(value))))
    return scalars


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tb") / "run"
    run_dir.mkdir()
    pretrained = nnx.state(pretrain(CFG, run_dir), PRETRAINED)
    finetune(CFG, run_dir, [VARIANT], pretrained)
    return run_dir


def test_every_phase_has_the_numbers_of_its_log(run_dir):
    for phase, steps in ((PRETRAIN, [5, 10, 15, 20]), (f"{VARIANT}-seed100", [5, 10])):
        events = read_scalars(phase_dir(run_dir, phase))
        assert events == logged_as_events(run_dir, phase)
        assert {"loss", "acc", "lr", "examples_per_s"} <= set(events)
        assert [step for step, _ in events["loss"]] == steps
    tuned = read_scalars(phase_dir(run_dir, f"{VARIANT}-seed100"))
    assert {f"consistency/{name}" for name in CONDITIONS} <= set(tuned)
    pretrain_lr = dict(read_scalars(phase_dir(run_dir, PRETRAIN))["lr"])
    assert pretrain_lr[5] > pretrain_lr[20] >= 0  # cosine decay after the warmup of 2 steps


def test_a_resumed_phase_leaves_each_step_once(run_dir):
    before = read_scalars(phase_dir(run_dir, PRETRAIN))
    shutil.rmtree(run_dir / "checkpoints" / PRETRAIN / str(CFG.pretrain.steps))  # as if killed after step 10
    pretrain(CFG, run_dir)  # resumes from step 10, logs 15 and 20 again
    after = read_scalars(phase_dir(run_dir, PRETRAIN))
    assert [step for step, _ in after["loss"]] == [5, 10, 15, 20]
    assert after["loss"] == before["loss"]  # the same batches from the same step: the same numbers
    assert after == logged_as_events(run_dir, PRETRAIN)


def test_tensorboard_reads_the_events(run_dir):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(phase_dir(run_dir, PRETRAIN)))
    events.Reload()
    ours = read_scalars(phase_dir(run_dir, PRETRAIN))
    for tag in ("loss", "acc", "lr"):
        assert [(e.step, e.value) for e in events.Scalars(tag)] == ours[tag]


def test_training_curves_are_drawn_from_the_log(run_dir, tmp_path):
    plot_training_curves({"variants": {"trivial": {}, VARIANT: {}}}, read_log(run_dir), tmp_path)
    assert (tmp_path / "training_curves.png").stat().st_size > 20_000
    # A sweep's (more than CROWDED variants): one panel per variant, twice the bytes of one axes here.
    sweep = {VARIANT: {}, **{f"frozen@{name}": {} for name in list(CONDITIONS)[:7] if name != "bellman"}, "oracle": {}}
    (tmp_path / "sweep").mkdir()
    plot_training_curves({"variants": sweep}, read_log(run_dir), tmp_path / "sweep")
    assert (tmp_path / "sweep" / "training_curves.png").stat().st_size > 150_000  # one axes: about 107 kB

"""Resume mid-phase, in process: pretraining and a fine-tuning phase are stopped after a checkpoint and before
their last step (the train step raises, as a SIGKILL would stop the loop there), then run again. The second
run must start from the checkpoint (step > 0), restore the optimizer state and step counter, and end bit for
bit where an uninterrupted run ends: parameters, optimizer state and every logged metric. A control shows
that discarding the restored optimizer state would be seen."""

import dataclasses
import logging
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from conftest import log_records
from flax import nnx

from configs import PRESETS
from experiment import phases, rundir
from models.model import ModelConfig
from models.objectives import PRETRAINED

# The tiny preset's data; a one-block model that compiles fast. Pretraining: checkpoints at steps 3, 6, 8;
# fine-tuning (tiny preset: 10 steps): checkpoints at 5, 10. One fine-tuning seed.
CFG = dataclasses.replace(
    PRESETS["tiny"],
    model=ModelConfig(encoder="edges", width=8, heads=1, layers=1, mlp_ratio=1),
    pretrain=dataclasses.replace(PRESETS["tiny"].pretrain, steps=8, checkpoint_every=3, log_every=1),
    finetune=dataclasses.replace(PRESETS["tiny"].finetune, log_every=1),
    experiment=dataclasses.replace(PRESETS["tiny"].experiment, seeds=1),
)
PHASES = {
    "pretrain": (CFG.pretrain, 7, 6),  # (optimizer config, step index at which the run dies, checkpoint before it)
    "frozen-seed100": (CFG.finetune, 7, 5),
}


class Killed(Exception):
    pass


def run_phase(phase: str, run_dir, monkeypatch, kill_at: int | None = None) -> list[int]:
    """Runs one phase in run_dir; returns the step indices its train step executed. With kill_at, the train
    step raises when asked for that step, once every checkpoint already started is on disk."""
    executed, managers = [], []
    make_train_step, checkpoint_manager = phases.make_train_step, rundir.checkpoint_manager

    def counting_step(*args, **kwargs):
        step_fn = make_train_step(*args, **kwargs)

        def step(params, opt_state, rest, data_key, step, *loss_args):
            if step == kill_at:
                for manager in managers:
                    manager.wait_until_finished()
                raise Killed(step)
            executed.append(int(step))
            return step_fn(params, opt_state, rest, data_key, step, *loss_args)

        return step

    def tracked_manager(*args, **kwargs):
        managers.append(checkpoint_manager(*args, **kwargs))
        return managers[-1]

    with monkeypatch.context() as patch:
        patch.setattr(phases, "make_train_step", counting_step)
        patch.setattr(rundir, "checkpoint_manager", tracked_manager)
        if phase == "pretrain":
            phases.pretrain(CFG, run_dir)
        else:
            pretrained = nnx.state(rundir.new_model(CFG, CFG.pretrain.seed), PRETRAINED)
            phases.finetune(CFG, run_dir, [phase.split("-seed")[0]], pretrained)
    return executed


def final_state(run_dir, phase: str, steps: int) -> list[np.ndarray]:
    checkpoint = run_dir / "checkpoints" / phase / str(steps)
    restored = [ocp.StandardCheckpointer().restore(checkpoint / item) for item in ("params", "opt_state")]
    return [np.asarray(x) for x in jax.tree.leaves(restored)]


def bit_equal(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("phase", PHASES)
def test_a_phase_killed_midway_resumes_from_its_checkpoint_to_the_same_bits(phase, tmp_path, monkeypatch):
    opt, kill_at, checkpoint = PHASES[phase]
    whole = tmp_path / "whole"
    assert run_phase(phase, whole, monkeypatch) == list(range(opt.steps))

    killed = tmp_path / "killed"
    with pytest.raises(Killed):
        run_phase(phase, killed, monkeypatch, kill_at=kill_at)
    saved = sorted(int(p.name) for p in (killed / "checkpoints" / phase).iterdir())
    assert saved[-1] == checkpoint < kill_at < opt.steps  # killed after a checkpoint, before the last step
    assert log_records(killed)[-1][1] == kill_at  # steps after the checkpoint were logged, and must not be logged twice
    control = tmp_path / "control"
    shutil.copytree(killed, control)

    resumed = run_phase(phase, killed, monkeypatch)
    assert resumed[0] == checkpoint > 0 and resumed == list(range(checkpoint, opt.steps))
    assert bit_equal(final_state(killed, phase, opt.steps), final_state(whole, phase, opt.steps))
    assert log_records(killed) == log_records(whole)

    # Control: a resume that restored the parameters but started the optimizer afresh ends elsewhere.
    restore = rundir._restore

    def discard_opt_state(manager, step, **items):
        return {**restore(manager, step, **items), "opt_state": items["opt_state"]}

    monkeypatch.setattr(rundir, "_restore", discard_opt_state)
    run_phase(phase, control, monkeypatch)
    assert not bit_equal(final_state(control, phase, opt.steps), final_state(whole, phase, opt.steps))


def test_a_failed_restore_silences_the_orphaned_asyncio_task_errors(tmp_path):
    """A truncated checkpoint is one RunError; the 'Task exception was never retrieved' that asyncio logs
    afterwards for orbax's abandoned reads (the flaky extra stderr line) is dropped, other asyncio errors are not."""
    manager = rundir.checkpoint_manager(tmp_path, "phase")
    params = {"w": np.arange(4096, dtype=np.float32)}
    manager.save(1, args=ocp.args.Composite(params=ocp.args.StandardSave(params)))
    manager.wait_until_finished()
    for data in (tmp_path / "checkpoints" / "phase" / "1" / "params" / "d").iterdir():
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(rundir.RunError, match="cannot restore checkpoint"):
        rundir._restore(manager, 1, params=params)

    def logged(message: str) -> bool:
        return bool(logging.getLogger("asyncio").filter(logging.makeLogRecord({"msg": message, "name": "asyncio"})))

    assert not logged("Task exception was never retrieved\nfuture: <Task finished ...>")
    assert logged("Unclosed client session")


def test_a_log_line_cut_short_by_a_kill_is_dropped_when_read(tmp_path):
    (tmp_path / "log.jsonl").write_text('{"phase": "p", "step": 1}\n{"phase": "p", "st')
    assert rundir.read_log(tmp_path) == [{"phase": "p", "step": 1}]
    (tmp_path / "log.jsonl").write_text("not json\n")
    with pytest.raises(rundir.RunError, match="is not a valid log"):
        rundir.read_log(tmp_path)

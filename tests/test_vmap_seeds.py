"""Seeds trained as one vmapped program leave what training them one after another leaves."""

import dataclasses
import shutil

import jax
import numpy as np
from conftest import log_records
from flax import nnx

from configs import PRESETS
from experiment.phases import finetune
from experiment.rundir import finetune_seeds, load_phase, new_model, phase_name, variant_model
from models.objectives import PRETRAINED, variant

# The fresh head: its seeds start from different parameters (a warm head starts as the same copy for every
# seed), so the control below sees what different seeds look like.
NAME = "frozen:fresh"


def test_vmapped_seeds_train_what_one_at_a_time_does(finished_run, tmp_path):
    cfg = PRESETS["tiny"]
    cfg = dataclasses.replace(cfg, experiment=dataclasses.replace(cfg.experiment, vmap_seeds=True))
    run = tmp_path / "run"
    shutil.copytree(finished_run / "run", run)
    for seed in finetune_seeds(cfg):
        shutil.rmtree(run / "checkpoints" / phase_name(NAME, seed))
    pretrained = nnx.state(load_phase(new_model(cfg, cfg.pretrain.seed), run, "pretrain", PRETRAINED), PRETRAINED)

    finetune(cfg, run, [NAME], pretrained)

    reporter = variant(NAME)
    trainable = reporter.trainable()

    def params(run_dir, seed):
        model = load_phase(variant_model(cfg, pretrained, seed, reporter), run_dir, phase_name(NAME, seed), trainable)
        return jax.tree.leaves(nnx.state(model, trainable))

    def largest_difference(a, b):
        return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))

    first, second = finetune_seeds(cfg)
    for seed in (first, second):
        # Not bit for bit: a vmapped matmul sums in another order, and Adam turns the rounding noise of
        # near-zero gradients into steps of up to lr (1e-3) each.
        assert largest_difference(params(run, seed), params(finished_run / "run", seed)) < 5e-3
    # Control: what "different" looks like - two seeds differ by far more.
    assert largest_difference(params(run, first), params(finished_run / "run", second)) > 0.05
    # Each seed logs its own lines, as one-at-a-time training does.
    logged = lambda run_dir: sorted(record[:2] for record in log_records(run_dir))  # noqa: E731 (phase, step)
    assert logged(run) == logged(finished_run / "run")

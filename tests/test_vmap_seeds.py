"""Seeds trained as one vmapped program leave what training them one after another leaves."""

import dataclasses
import json
import shutil

import jax
import numpy as np
from flax import nnx

from models.objectives import PRETRAINED, variant
from train import PRESETS, finetune, finetune_seeds, load_phase, new_model, variant_model


def test_vmapped_seeds_train_what_one_at_a_time_does(finished_run, tmp_path):
    cfg = PRESETS["tiny"]
    cfg = dataclasses.replace(cfg, experiment=dataclasses.replace(cfg.experiment, vmap_seeds=True))
    run = tmp_path / "run"
    shutil.copytree(finished_run / "run", run)
    for seed in finetune_seeds(cfg):
        shutil.rmtree(run / "checkpoints" / f"frozen-seed{seed}")
    pretrained = nnx.state(load_phase(new_model(cfg, cfg.pretrain.seed), run, "pretrain", PRETRAINED), PRETRAINED)

    finetune(cfg, run, "frozen", pretrained)

    trainable = variant("frozen").trainable()
    for seed in finetune_seeds(cfg):
        phase = f"frozen-seed{seed}"
        vmapped = load_phase(variant_model(cfg, pretrained, seed), run, phase, trainable)
        alone = load_phase(variant_model(cfg, pretrained, seed), finished_run / "run", phase, trainable)
        leaves = [jax.tree.leaves(nnx.state(model, trainable)) for model in (vmapped, alone)]
        for a, b in zip(*leaves, strict=True):
            np.testing.assert_allclose(a, b, atol=2e-5)
    # Each seed logs its own lines, as one-at-a-time training does.
    logged = lambda path: [(r["phase"], r["step"]) for r in map(json.loads, path.read_text().splitlines())]  # noqa: E731
    assert sorted(logged(run / "log.jsonl")) == sorted(logged(finished_run / "run" / "log.jsonl"))

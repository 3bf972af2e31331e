"""Variants that draw the same batches on the frozen encoder train together as members of one program: they
leave bit for bit what training them one at a time leaves, the compiled step encodes each batch once, and
only variants that may share a program are grouped."""

import dataclasses
import shutil
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import PRESETS
from experiment.fit import fit, make_train_step
from experiment.mesh import place
from experiment.optim import optimizer
from experiment.phases import finetune, finetune_sampler, member_groups
from experiment.rundir import finetune_seeds, load_phase, new_model, phase_name, read_log, variant_model
from models.model import ModelConfig
from models.objectives import PRETRAINED, finetune_loss, variant

# The tiny preset's data and a small graph encoder (a fori_loop: a while loop in the compiled step).
CFG = dataclasses.replace(PRESETS["tiny"], model=ModelConfig(width=8, heads=1, mlp_ratio=1))
# Three reporters on the labels of sizes <= n, two baselines with labels up to N, one encoder-training variant.
NAMES = ["frozen", "frozen:shared", "frozen:fresh", "oracle", "probe", "trainable"]


@pytest.fixture(scope="module")
def pretrained():
    """The frozen part, as initialised: what the members share need not be trained for them to share it."""
    return nnx.state(new_model(CFG, 0), PRETRAINED)


def test_member_groups_share_a_program_only_where_they_draw_the_same_batches_from_the_same_step(tmp_path):
    run = tmp_path / "run"
    assert member_groups(CFG, run, NAMES) == [
        ["frozen", "frozen:shared", "frozen:fresh"],
        ["oracle", "probe"],
        ["trainable"],
    ]
    # A consistency loss draws unlabelled graphs too: another sampler, another group.
    assert member_groups(CFG, run, ["frozen", "frozen@range", "frozen:fresh@bellman"]) == [
        ["frozen"],
        ["frozen@range", "frozen:fresh@bellman"],
    ]
    # Two encoder-training variants never share (each trains its own encoder).
    assert member_groups(CFG, run, ["trainable", "trainable+dst"]) == [["trainable"], ["trainable+dst"]]
    # A variant whose seeds have all reached a checkpoint trains apart from one that starts afresh.
    for seed in finetune_seeds(CFG):
        (run / "checkpoints" / phase_name("frozen:shared", seed) / "5").mkdir(parents=True)
    assert member_groups(CFG, run, ["frozen", "frozen:shared", "frozen:fresh"]) == [
        ["frozen", "frozen:fresh"],
        ["frozen:shared"],
    ]


@pytest.mark.slow
@pytest.mark.production_codegen
def test_members_train_bit_for_bit_what_one_variant_at_a_time_does(pretrained, tmp_path):
    together, alone = tmp_path / "together", tmp_path / "alone"
    finetune(CFG, together, NAMES, pretrained)
    for name in NAMES:
        finetune(CFG, alone, [name], pretrained)

    def params(run_dir, name, seed):
        reporter = variant(name)
        model = variant_model(CFG, pretrained, seed, reporter)
        load_phase(model, run_dir, phase_name(name, seed), reporter.trainable())
        return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, reporter.trainable()))]

    for name in NAMES:
        for seed in finetune_seeds(CFG):
            a, b = params(together, name, seed), params(alone, name, seed)
            assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)), (name, seed)
    # Control: each member trained its own head (a member given another's parameters would fail above).
    first, shared = params(together, "frozen", 100), params(alone, "frozen:fresh", 100)
    assert not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(first, shared, strict=False))

    # Every phase logs its own lines with its own numbers, as one at a time ("examples_per_s" is a timing).
    def logged(run_dir):
        return sorted(sorted((k, v) for k, v in r.items() if k != "examples_per_s") for r in read_log(run_dir))

    assert len(logged(together)) == len(NAMES) * len(finetune_seeds(CFG)) * 2  # two logged steps a phase
    assert logged(together) == logged(alone)


@pytest.mark.production_codegen
def test_a_killed_group_resumes_one_variant_at_a_time_to_the_same_bits(pretrained, tmp_path):
    """Members checkpoint as their own phases: a group cut after its first checkpoint, then resumed one
    variant at a time, ends where the group does."""
    names = ["frozen", "frozen:fresh"]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    finetune(CFG, whole, names, pretrained)
    finetune(CFG, cut, names, pretrained)
    for name in names:
        for seed in finetune_seeds(CFG):
            shutil.rmtree(cut / "checkpoints" / phase_name(name, seed) / str(CFG.finetune.steps))
    for name in names:
        finetune(CFG, cut, [name], pretrained)
    for name in names:
        for seed in finetune_seeds(CFG):
            reporter = variant(name)
            leaves = [
                jax.tree.leaves(
                    nnx.state(
                        load_phase(
                            variant_model(CFG, pretrained, seed, reporter),
                            run,
                            phase_name(name, seed),
                            reporter.trainable(),
                        ),
                        reporter.trainable(),
                    )
                )
                for run in (whole, cut)
            ]
            assert all(np.array_equal(x, y) for x, y in zip(*leaves, strict=True)), (name, seed)


def _compiled_update(names: list[str], pretrained, common=PRETRAINED) -> str:
    """The optimised HLO of the fine-tuning update of `names` as members of one step, sharing the frozen
    parameters that `common` selects (fit's split)."""
    reporters = [variant(name) for name in names]
    models = [variant_model(CFG, pretrained, 100, reporter) for reporter in reporters]
    splits = [nnx.split(m, r.trainable(), common, ...) for m, r in zip(models, reporters, strict=True)]
    tx = optimizer(CFG.finetune)
    losses = tuple(
        partial(finetune_loss, variant=reporter, n_pad=CFG.data.n_max, vocab=CFG.data.vocab) for reporter in reporters
    )
    sample = finetune_sampler(CFG, reporters[0])
    step = make_train_step(tuple(g for g, *_ in splits), tx, losses, sample, 16)
    params = place(tuple(p for _, p, _, _ in splits), False)
    opt_state = place(tuple(tx.init(p) for p in params), False)
    rest = place((splits[0][2], tuple(own for *_, own in splits)), False)
    batches = jax.vmap(lambda i: sample(jax.random.fold_in(jax.random.key(0), i), 16))(jnp.arange(1))
    args = tuple((reporter.weights(),) for reporter in reporters)
    return step.update.lower(params, opt_state, rest, batches, 0, *args).compile().as_text()


@pytest.mark.slow
@pytest.mark.production_codegen
def test_members_on_the_frozen_encoder_encode_each_batch_once(pretrained):
    """The graph encoder is one while loop (a fori_loop over its iterations): three members' step holds as
    many as one member's, so the encoding is computed once, not three times."""
    members = ["frozen", "frozen:shared", "frozen:fresh"]
    one = _compiled_update(["frozen"], pretrained).count(" while(")
    assert one >= 1 and _compiled_update(members, pretrained).count(" while(") == one
    # Control: each member with its own copy of the encoder (nothing common) encodes three times.
    assert _compiled_update(members, pretrained, common=nnx.Nothing).count(" while(") == 3 * one


def test_fit_refuses_a_member_that_trains_what_the_members_share(pretrained, tmp_path):
    reporters = [variant("frozen"), variant("trainable")]
    models = [[variant_model(CFG, pretrained, 100, reporter)] for reporter in reporters]
    trainables = [reporter.trainable() for reporter in reporters]
    with pytest.raises(ValueError, match="trains parameters that `common` shares"):
        fit(models, trainables, None, None, CFG.finetune, tmp_path, [["a"], ["b"]], [100], common=PRETRAINED)

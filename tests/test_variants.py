"""Variant contracts: for every variant of `models.objectives.VARIANTS`, which parameter groups a few
fine-tuning steps change, whether the d(s,t) loss is in its gradient, and from which graph sizes its labelled,
unlabelled and evaluation batches come. A variant added without an entry in CONTRACTS fails here."""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import PRESETS
from experiment.fit import make_train_step
from experiment.mesh import place
from experiment.optim import optimizer
from experiment.phases import finetune_sampler
from experiment.rundir import new_model, variant_model
from graphgen import GraphBatch
from models.model import ModelConfig
from models.objectives import PRETRAINED, VARIANTS, Unlabelled, finetune_loss, variant

GROUPS = {"encoder", "d_st_head", "report_head", "probe"}


class Contract(NamedTuple):
    changes: set[str]  # parameter groups a few steps change (no weight decay: a group without gradient stays)
    trainable: set[str]  # parameter groups the variant's filter hands to the optimizer
    d_st_loss: bool  # the d(s,t) cross-entropy is part of the fine-tuning loss (its gradient reaches d_st_head)
    labels: str | None  # sizes of the labelled batches: "n_min..n", "n_min..N" or None (no labels)
    unlabelled: str  # sizes of the consistency batches, when the variant has consistency losses


CONTRACTS = {
    "frozen": Contract({"report_head"}, {"report_head"}, False, "n_min..n", "n+1..N"),
    "trainable": Contract(
        {"report_head", "encoder"}, {"report_head", "encoder", "d_st_head"}, False, "n_min..n", "n+1..N"
    ),
    "trainable+dst": Contract(
        {"report_head", "encoder", "d_st_head"}, {"report_head", "encoder", "d_st_head"}, True, "n_min..n", "n+1..N"
    ),
    "oracle": Contract({"report_head"}, {"report_head"}, False, "n_min..N", "n+1..N"),
    "probe": Contract({"probe"}, {"probe"}, False, "n_min..N", "n+1..N"),
    "consistency-only": Contract({"report_head"}, {"report_head"}, False, None, "n_min..N"),
}

# The tiny preset's sizes (n_min = 3, n = 4, N = 6); a one-block model (the contracts are about parameter
# groups, not the encoder's design) that compiles fast; no weight decay, so a group without gradient stays put.
CFG = PRESETS["tiny"]
CFG = dataclasses.replace(
    CFG,
    model=ModelConfig(encoder="edges", width=8, heads=1, layers=1, mlp_ratio=1),
    finetune=dataclasses.replace(CFG.finetune, weight_decay=0.0, lr=1e-2, warmup=0),
)
SIZES = {
    "n_min..n": set(range(CFG.data.n_min, CFG.data.n_report + 1)),
    "n_min..N": set(range(CFG.data.n_min, CFG.data.n_max + 1)),
    "n+1..N": set(range(CFG.data.n_report + 1, CFG.data.n_max + 1)),
}


def test_every_variant_has_a_contract():
    assert set(CONTRACTS) == set(VARIANTS), "add the new variant's contract to CONTRACTS"


def contract(name: str) -> Contract:
    if name not in CONTRACTS:
        pytest.fail(f"variant '{name}' has no entry in CONTRACTS")
    return CONTRACTS[name]


def groups(tree) -> dict[str, list[np.ndarray]]:
    leaves = jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(tree))[0]
    out = {}
    for path, leaf in leaves:
        out.setdefault(path[0].key, []).append(np.array(leaf))
    return out


def sizes_of(batch) -> np.ndarray:
    """Graph sizes of a batch, read off the edge lists (graphs are connected: every vertex is in an edge)."""
    edges, mask = np.asarray(batch.edges), np.asarray(batch.edge_mask)
    return np.array([len(np.unique(e[m])) for e, m in zip(edges, mask, strict=True)])


@pytest.fixture(scope="module")
def pretrained():
    return nnx.state(new_model(CFG, CFG.pretrain.seed), PRETRAINED)


@pytest.mark.parametrize("name", VARIANTS)
def test_batches_come_from_the_contracted_sizes(name):
    expected = contract(name)
    reporter = variant(f"{name}@all")  # with consistency losses: both kinds of batch
    batches = finetune_sampler(CFG, reporter)(jax.random.key(3), 64)
    if expected.labels is None:
        assert "labelled" not in batches
    else:
        labelled = batches["labelled"]
        assert isinstance(labelled, GraphBatch)
        assert set(np.asarray(labelled.num_nodes).tolist()) == SIZES[expected.labels]
        assert (sizes_of(labelled) == np.asarray(labelled.num_nodes)).all()
    free = batches["unlabelled"]
    assert type(free) is Unlabelled  # no field for a label: no d(s,t), no distances, no path order
    assert set(sizes_of(free).tolist()) == SIZES[expected.unlabelled]
    # Without consistency losses, no unlabelled batch is drawn at all.
    plain = finetune_sampler(CFG, variant(name))(jax.random.key(3), 4)
    assert ("unlabelled" in plain) == bool(variant(name).consistency)


def loss_fn(reporter):
    def fn(model, batches, weights):
        return finetune_loss(model, batches, weights, reporter, CFG.data.n_max, CFG.data.vocab)

    return fn


@pytest.mark.parametrize("name", VARIANTS)
def test_a_few_steps_change_exactly_the_contracted_parameters(name, pretrained):
    expected = contract(name)
    reporter = variant(name)
    model = variant_model(CFG, pretrained, CFG.finetune.seed)
    before = groups(nnx.state(model))
    assert set(before) == GROUPS
    trainable = reporter.trainable()
    assert set(groups(nnx.state(model, trainable))) == expected.trainable

    batches = finetune_sampler(CFG, reporter)(jax.random.key(5), 64)
    graphdef, params, rest = nnx.split(model, trainable, ...)
    tx = optimizer(CFG.finetune)
    step = make_train_step(graphdef, tx, loss_fn(reporter), lambda key, size: batches, 64)
    params, rest = place(params, False), place(rest, False)  # as `fit` does: the step then compiles once
    opt_state = place(tx.init(params), False)
    for i in range(3):
        params, opt_state, metrics = step(params, opt_state, rest, jax.random.key(0), i, reporter.weights())
        assert np.isfinite(float(metrics["loss"]))
    after = groups(nnx.state(nnx.merge(graphdef, params, rest)))
    changed = {
        group
        for group in GROUPS
        if any(not np.array_equal(a, b) for a, b in zip(before[group], after[group], strict=True))
    }
    assert changed == expected.changes


@pytest.mark.parametrize("name", VARIANTS)
def test_the_d_st_loss_is_in_the_gradient_exactly_when_contracted(name, pretrained):
    reporter = variant(name)
    model = variant_model(CFG, pretrained, CFG.finetune.seed)
    batches = finetune_sampler(CFG, reporter)(jax.random.key(5), 64)
    graphdef, d_st_head, rest = nnx.split(model, nnx.PathContains("d_st_head"), ...)

    def objective(head):
        return loss_fn(reporter)(nnx.merge(graphdef, head, rest), batches, reporter.weights())[0]

    grads = jax.jit(jax.grad(objective))(d_st_head)
    norm = float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree.leaves(grads))))
    assert (norm > 1e-6) == contract(name).d_st_loss, norm

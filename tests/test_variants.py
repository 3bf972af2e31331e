"""Variant contracts: for every variant of `models.objectives.VARIANTS` and every report head it may use, which
parameter groups a few fine-tuning steps change, whether the d(s,t) loss is in its objective, and from which
graph sizes its labelled and unlabelled batches come. A variant or head added without an entry in CONTRACTS or
HEAD_GROUPS fails here."""

import dataclasses
from typing import NamedTuple

import jax
import numpy as np
import pytest
from flax import nnx

from configs import PRESETS
from experiment.fit import draw_batch, make_train_step
from experiment.mesh import place
from experiment.optim import optimizer
from experiment.phases import finetune_sampler
from experiment.rundir import new_model, variant_model
from graphgen import GraphBatch
from models.model import REPORTERS, ModelConfig
from models.objectives import PRETRAINED, VARIANTS, Unlabelled, d_st_loss, finetune_loss, variant

GROUPS = {"encoder", "d_st_head", "report_head", "u_query", "probe", "mlp_probe"}


class Contract(NamedTuple):
    extra_changes: set[str]  # groups beyond the reporter's own that a few steps change (no weight decay)
    extra_trainable: set[str]  # groups beyond the reporter's own that the variant hands to the optimizer
    d_st_loss: bool  # the d(s,t) cross-entropy is part of the fine-tuning loss
    labels: str | None  # sizes of the labelled batches: "n_min..n", "n_min..N" or None (no labels)
    unlabelled: str  # sizes of the consistency batches, when the variant has consistency losses


ENCODER = {"encoder", "d_st_head"}
CONTRACTS = {
    "frozen": Contract(set(), set(), False, "n_min..n", "n+1..N"),
    "trainable": Contract({"encoder"}, ENCODER, False, "n_min..n", "n+1..N"),
    "trainable+dst": Contract(ENCODER, ENCODER, True, "n_min..n", "n+1..N"),
    "oracle": Contract(set(), set(), False, "n_min..N", "n+1..N"),
    "trainable-oracle": Contract({"encoder"}, ENCODER, False, "n_min..N", "n+1..N"),
    "probe": Contract(set(), set(), False, "n_min..N", "n+1..N"),
    "mlp-probe": Contract(set(), set(), False, "n_min..N", "n+1..N"),
    "consistency-only": Contract(set(), set(), False, None, "n_min..N"),
}
# The parameter groups each reporter trains: "warm" a copy of the d(s,t) head plus the projection of u;
# "shared" the projection of u alone (its answers come from the d(s,t) head, which trains only with the encoder).
HEAD_GROUPS = {
    "fresh": {"report_head"},
    "warm": {"report_head", "u_query"},
    "warm-overseer": {"report_head", "u_query"},  # warm, started from the overseer's question
    "shared": {"u_query"},
    "probe": {"probe"},
    "mlp-probe": {"mlp_probe"},
}
# Every base variant with its default head, and the decoder-query bases with every other head.
BASES = ("frozen", "trainable", "trainable+dst", "oracle", "consistency-only")
SPECS = [*VARIANTS, *(f"{base}:{head}" for base in BASES for head in ("fresh", "shared")), "frozen:warm-overseer"]


# The tiny preset's sizes (n_min = 3, n = 4, N = 6) with an overseer learned (a d(s,t) head of two questions,
# for warm-overseer); a one-block model (the contracts are about parameter groups, not the encoder's design) that
# compiles fast; no weight decay, so a group without gradient stays put.
CFG = PRESETS["tiny"].replace(data={"overseer": "nearsighted"})
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


def test_every_variant_and_head_has_a_contract():
    assert set(CONTRACTS) == set(VARIANTS), "add the new variant's contract to CONTRACTS"
    assert set(HEAD_GROUPS) == set(REPORTERS), "add the new reporter's parameter groups to HEAD_GROUPS"
    assert {variant(spec).head for spec in SPECS} == set(REPORTERS)


def contract(spec: str) -> Contract:
    base = spec.partition("@")[0].partition(":")[0]
    if base not in CONTRACTS:
        pytest.fail(f"variant '{base}' has no entry in CONTRACTS")
    return CONTRACTS[base]


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
    # Drawn as the train step draws them, part by part: every variant's labelled part is one program (its sizes
    # are traced), and their unlabelled parts another.
    batches = draw_batch(finetune_sampler(CFG, reporter), 64, jax.random.key(3))
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
    assert ("unlabelled" in finetune_sampler(CFG, variant(name)).parts()) == bool(variant(name).consistency)


def loss_fn(reporter):
    def fn(model, batches, weights):
        return finetune_loss(model, batches, weights, reporter, CFG.data.n_max, CFG.data.vocab)

    return fn


@pytest.mark.parametrize("name", SPECS)
def test_a_few_steps_change_exactly_the_contracted_parameters(name, pretrained):
    expected = contract(name)
    reporter = variant(name)
    own = HEAD_GROUPS[reporter.head]
    model = variant_model(CFG, pretrained, CFG.finetune.seed, reporter)
    before = groups(nnx.state(model))
    assert set(before) == GROUPS
    trainable = reporter.trainable()
    assert set(groups(nnx.state(model, trainable))) == own | expected.extra_trainable

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
    # The shared reporter answers through the d(s,t) head: where that head trains, the report's loss moves it.
    through_d_st = {"d_st_head"} if reporter.head == "shared" and "d_st_head" in expected.extra_trainable else set()
    assert changed == own | expected.extra_changes | through_d_st


@pytest.mark.parametrize("name", SPECS)
def test_the_d_st_loss_is_in_the_objective_exactly_when_contracted(name, pretrained):
    """The loss minus the same variant's loss without the d(s,t) term is the d(s,t) cross-entropy, or 0.
    (Not the gradient at the d(s,t) head: the "shared" reporter trains that head with its own loss.)"""
    reporter = variant(name)
    model = variant_model(CFG, pretrained, CFG.finetune.seed, reporter)
    batches = finetune_sampler(CFG, reporter)(jax.random.key(5), 64)
    weights = reporter.weights()
    loss = float(loss_fn(reporter)(model, batches, weights)[0])
    without = float(loss_fn(dataclasses.replace(reporter, keep_d_st=False))(model, batches, weights)[0])
    d_st = float(d_st_loss(model, batches["labelled"], CFG.data.n_max)[0]) if "labelled" in batches else 0.0
    assert d_st > 0.1 or "labelled" not in batches  # an untrained head: the term is far from 0
    assert loss - without == pytest.approx(d_st if contract(name).d_st_loss else 0.0, abs=1e-5)

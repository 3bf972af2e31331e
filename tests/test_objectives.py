"""The fine-tuning objective's pieces by hand: which vertices are report queries and with which labels, the
masked cross-entropy and accuracy that training logs, and the report loss built from them."""

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from configs import PRESETS
from experiment.fit import make_train_step
from experiment.mesh import place
from experiment.optim import optimizer
from experiment.phases import finetune_sampler
from experiment.rundir import new_model, variant_model
from graphgen import GraphBatch, sample_batch
from graphgen.twins import TWINS
from models.consistency import CONDITIONS, TWIN_OF, checks
from models.model import PathModel
from models.objectives import (
    PRETRAINED,
    _masked_ce,
    answers,
    consistency_loss,
    finetune_loss,
    path_queries,
    report_loss,
    unlabelled,
    variant,
)


def test_path_queries_are_the_path_vertices_labelled_by_position():
    """Two paths padded to 5: 7-3-9 (d(s,t) = 2) and 4-8 (d = 1). Padding positions are no query."""
    path = jnp.array([[7, 3, 9, 0, 0], [4, 8, 0, 0, 0]])
    zeros = jnp.zeros(2, jnp.int32)
    batch = GraphBatch(*(zeros,) * 6, path, jnp.array([3, 2]), *(zeros,) * 4)
    u, labels, valid = path_queries(batch)
    assert u.tolist() == path.tolist()
    assert labels.tolist() == [[0, 1, 2, 3, 4]] * 2
    assert valid.tolist() == [[True, True, True, False, False], [True, True, False, False, False]]


def test_masked_cross_entropy_and_accuracy_over_the_valid_queries_only():
    """Four queries, the last masked. 1: logits favour its label 0 (right); 2: uniform over 2 classes, argmax
    0, label 1 (wrong); 3: favours its label 1 (right); 4 would be right but does not count."""
    logits = jnp.array([[[2.0, 0.0], [0.0, 0.0], [0.0, 3.0], [5.0, 0.0]]])
    labels = jnp.array([[0, 1, 1, 0]])
    valid = jnp.array([[True, True, True, False]])
    loss, acc = _masked_ce(logits, labels, valid)
    # Mean over the valid queries of -log softmax at the label: log(1 + e^-2), log 2, log(1 + e^-3).
    expected = (np.log1p(np.exp(-2.0)) + np.log(2.0) + np.log1p(np.exp(-3.0))) / 3
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(acc) == pytest.approx(2 / 3)
    assert float(_masked_ce(logits, labels, jnp.zeros_like(valid))[1]) == 0  # nothing valid: 0, not NaN


def test_report_loss_is_the_reports_masked_cross_entropy_plus_the_kept_d_st_term():
    """On the looped graph encoder (its iterations are the padded size): the report's cross-entropy over the
    path queries, plus the d(s,t) cross-entropy when the variant keeps it."""
    cfg = PRESETS["tiny"]
    model = new_model(cfg, 0)
    data = cfg.data
    batch = sample_batch(
        jax.random.key(0), 8, families=tuple(data.family_list()), n_min=data.n_min, n_max=data.n_max,
        vocab=data.vocab, n_pad=data.n_max,
    )  # fmt: skip
    encoded = model.encode(batch.edges, batch.edge_mask, batch.s, batch.t, data.n_max)
    u, labels, valid = path_queries(batch)
    report_ce, report_acc = _masked_ce(model.report("warm", encoded, batch.edges, batch.edge_mask, u), labels, valid)
    d_st_ce = optax.softmax_cross_entropy_with_integer_labels(model.d_st_head(*encoded)[:, 0], batch.d_st).mean()
    for name, expected in (("frozen", report_ce), ("trainable+dst", report_ce + d_st_ce)):
        loss, acc = report_loss(model, batch, variant(name), data.n_max)
        assert float(loss) == pytest.approx(float(expected), rel=1e-5) and float(acc) == float(report_acc), name


def test_finetune_loss_is_the_report_loss_plus_the_weighted_consistency_terms():
    cfg = PRESETS["tiny"]
    model, data = new_model(cfg, 0), cfg.data
    batch = sample_batch(
        jax.random.key(1), 8, families=tuple(data.family_list()), n_min=data.n_min, n_max=data.n_max,
        vocab=data.vocab, n_pad=data.n_max,
    )  # fmt: skip
    free = unlabelled(batch, jax.random.key(2), tuple(TWINS), data.vocab)
    reporter = variant("frozen@range=0.5+bellman=2")
    weighted, terms = consistency_loss(model, reporter, free, reporter.weights(), data.n_max, data.vocab)
    term = dict(zip(CONDITIONS, (float(t) for t in terms), strict=True))
    assert min(term.values()) > 0  # an untrained reporter: every term counts
    assert float(weighted) == pytest.approx(0.5 * term["range"] + 2 * term["bellman"], rel=1e-5)

    batches = {"labelled": batch, "unlabelled": free}
    loss, metrics = finetune_loss(model, batches, reporter.weights(), reporter, data.n_max, data.vocab)
    report, acc = report_loss(model, batch, reporter, data.n_max)
    assert float(loss) == pytest.approx(float(report + weighted), rel=1e-5)
    assert set(metrics) == {"acc", *(f"consistency/{name}" for name in CONDITIONS)}
    assert float(metrics["acc"]) == float(acc)
    assert all(float(metrics[f"consistency/{n}"]) == pytest.approx(term[n], rel=1e-5) for n in CONDITIONS)

    # Without labels: the checks alone (all weights 1), and no accuracy to log.
    only = variant("consistency-only")
    loss, metrics = finetune_loss(model, {"unlabelled": free}, only.weights(), only, data.n_max, data.vocab)
    assert float(loss) == pytest.approx(sum(term[n] for n in checks()), rel=1e-5) and float(metrics["acc"]) == 0

    # A condition whose twin was not drawn counts 0; the others are unchanged.
    _, without = consistency_loss(model, reporter, unlabelled(batch), reporter.weights(), data.n_max, data.vocab)
    without = dict(zip(CONDITIONS, (float(t) for t in without), strict=True))
    assert without == {n: 0.0 if n in TWIN_OF else pytest.approx(term[n], rel=1e-5) for n in CONDITIONS}


def test_the_conditions_read_the_variants_own_reporter_and_the_d_st_question():
    """`answers`, what every condition reads: the softmax of the variant's own reporter from s, from t and on a
    twin (at the original ids: `back` maps each to its twin id), and d̂ the argmax of the d(s,t) question, on a
    model with both questions (with a learned overseer, o(s,t) must not stand in for d̂)."""
    data = PRESETS["tiny"].data
    model = PathModel(PRESETS["tiny"].model, data.vocab, nnx.Rngs(2), overseer=True)  # seed 2: varied answers
    batch = sample_batch(
        jax.random.key(1), 8, families=tuple(data.family_list()), n_min=data.n_min, n_max=data.n_max,
        vocab=data.vocab, n_pad=data.n_max,
    )  # fmt: skip
    free = unlabelled(batch, jax.random.key(2), ("relabelled",), data.vocab)
    ids = jnp.broadcast_to(jnp.arange(1, data.vocab + 1), (8, data.vocab))
    seen = []
    for head in ("fresh", "shared"):  # each reporter other than `warm` reads another head

        def reported(edges, edge_mask, s, t, head=head):
            encoded = model.encode(edges, edge_mask, s, t, data.n_max)
            return np.asarray(jax.nn.softmax(model.report(head, encoded, edges, edge_mask, ids)))

        _, from_s, from_t, d_hat, twins = answers(
            model, variant(f"consistency-only:{head}@relabel"), free, data.n_max, data.vocab
        )
        twin = free.twins["relabelled"]
        on_twin = np.take_along_axis(reported(twin.edges, twin.edge_mask, twin.s, twin.t), twin.back[..., None] - 1, 1)
        np.testing.assert_allclose(from_s, reported(free.edges, free.edge_mask, free.s, free.t), rtol=1e-6)
        np.testing.assert_allclose(from_t, reported(free.edges, free.edge_mask, free.t, free.s), rtol=1e-6)
        np.testing.assert_allclose(twins["relabelled"], on_twin, rtol=1e-6)
        seen.append(from_s)
    assert not np.allclose(*seen)  # control: the two reporters answer differently
    d_st = model(free.edges, free.edge_mask, free.s, free.t, data.n_max).argmax(-1)
    o_st = model.overseer(free.edges, free.edge_mask, free.s, free.t, data.n_max).argmax(-1)
    np.testing.assert_array_equal(d_hat, d_st)
    assert (d_st != o_st).any()  # control: the overseer's question answers otherwise


def test_a_self_training_weight_ramps_up_over_the_first_fifth_of_fine_tuning():
    reporter = variant("frozen@range=2+confidence=0.5")
    at = lambda progress: dict(zip(CONDITIONS, reporter.weights(progress).tolist(), strict=True))  # noqa: E731
    assert reporter.ramps() and not variant("frozen@all").ramps()
    assert [at(p)["confidence"] for p in (0.0, 0.1, 0.2, 0.7)] == pytest.approx([0.0, 0.25, 0.5, 0.5])
    assert {at(p)["range"] for p in (0.0, 0.1, 1.0)} == {2.0}
    assert at(1.0) == {n: {"range": 2.0, "confidence": 0.5}.get(n, 0.0) for n in CONDITIONS}


@pytest.mark.production_codegen
def test_confidence_at_weight_0_trains_bit_for_bit_as_no_condition():
    """The unlabelled graphs, the reporter's answers on them and the confidence term are all computed, and
    change nothing when weighted 0: the same parameters after a few steps as the plain `frozen` variant."""
    cfg = PRESETS["tiny"]
    pretrained = nnx.state(new_model(cfg, 0), PRETRAINED)
    plain, zero = variant("frozen"), dataclasses.replace(variant("frozen"), consistency=(("confidence", 0.0),))
    trained = []
    for reporter in (plain, zero):
        model = variant_model(cfg, pretrained, 100, reporter)
        graphdef, params, rest = nnx.split(model, reporter.trainable(), ...)
        tx = optimizer(cfg.finetune)
        loss_fn = partial(finetune_loss, variant=reporter, n_pad=cfg.data.n_max, vocab=cfg.data.vocab)
        step = make_train_step(graphdef, tx, loss_fn, finetune_sampler(cfg, reporter), 16)
        params, rest = place(params, False), place(rest, False)  # as `fit` does: each step compiles once
        opt_state = place(tx.init(params), False)
        for i in range(3):
            params, opt_state, _ = step(params, opt_state, rest, jax.random.key(1), i, reporter.weights(i / 3))
        trained.append(jax.tree.leaves(params))
    assert "unlabelled" in finetune_sampler(cfg, zero).parts()  # drawn by the weight-0 variant's step
    assert all(np.array_equal(a, b) for a, b in zip(*trained, strict=True))

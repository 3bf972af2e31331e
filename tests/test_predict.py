"""Evaluation in chunks: `in_buckets` gives every example its own output, computed at its size bucket, whatever
the chunk size, with its own dtype and shape, and with each chunk read back only after the next is dispatched.
`answers` asks from s unless told to swap."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import PRESETS
from experiment.metrics import query_labels
from experiment.predict import OVERSEER, answers, in_buckets, predictions, self_query
from experiment.rundir import make_eval_set, new_model, variant_model
from models.model import PathModel
from models.objectives import PRETRAINED, variant

SIZES = np.array([4, 9, 5, 17, 8, 12, 4, 30, 16, 7, 10])
# By hand: a size up to min_pad (10, the training size N) at exactly min_pad, as in training (the looped encoder
# iterates n_pad times: 9 at 16 would run 6 iterations more than it was trained with; 10 itself too, not at its
# bucket 16); a larger one at the next power of two (at least 8), capped at the largest size (30).
PADS = np.array([10, 10, 10, 30, 10, 16, 10, 30, 16, 10, 10])


def arrays():
    rng = np.random.default_rng(0)
    count = len(SIZES)
    return {
        "num_nodes": SIZES,
        "edges": rng.integers(1, 40, (count, 6, 2)),
        "edge_mask": rng.random((count, 6)) < 0.5,
        "s": np.arange(1, count + 1),
        "t": np.arange(count, 0, -1),
        "path": rng.integers(0, 40, (count, 30)),
    }


def forward(inputs, n_pad):
    """Depends on the example (its s, its edges) and on the bucket it ran in."""
    return [inputs["s"] * 100 + n_pad, inputs["edges"].sum((1, 2)) * inputs["edge_mask"].any(-1)]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 256])
def test_every_example_gets_its_own_output_at_its_bucket(batch_size):
    data = arrays()
    at_pad, edge_sum = in_buckets(forward, data, min_pad=10, batch_size=batch_size)
    np.testing.assert_array_equal(at_pad, data["s"] * 100 + PADS)
    np.testing.assert_array_equal(edge_sum, data["edges"].sum((1, 2)) * data["edge_mask"].any(-1))


def test_a_single_array_output_comes_back_as_an_array():
    data = arrays()
    got = in_buckets(lambda inputs, n_pad: inputs["t"] + n_pad, data, min_pad=10, batch_size=4)
    np.testing.assert_array_equal(got, data["t"] + PADS)


def test_outputs_keep_their_dtype_and_shape():
    """An answer table (B, E, 2) of small integers and a flag (B,) come back as they were computed, not as floats."""
    data = arrays()
    edges, flag = in_buckets(lambda inputs, n_pad: [inputs["edges"].astype(jnp.int16), inputs["s"] > 5], data, 10, 4)
    assert edges.dtype == np.int16 and flag.dtype == np.bool_
    np.testing.assert_array_equal(edges, data["edges"])
    np.testing.assert_array_equal(flag, data["s"] > 5)


@pytest.fixture(scope="module")
def questions():
    """64 questions of the tiny evaluation set and an untrained model (no mutated code: cached for the module)."""
    cfg = PRESETS["tiny"]
    return cfg, {k: v[:64] for k, v in make_eval_set(cfg.data).items()}, new_model(cfg, 3)


@pytest.fixture
def tiny(questions):
    """The questions, the model, and a fresh reporter on it (varied answers); per test, as `variant` is mutated."""
    cfg, data, pretrained = questions
    reporter = variant_model(cfg, nnx.state(pretrained, PRETRAINED), 100, variant("frozen:fresh"))
    return cfg, data, pretrained, [(reporter, "fresh"), (pretrained, None)]


def test_answers_are_asked_from_s_unless_swapped(tiny):
    """The evaluation's answers from s are `answers` without `swap` (the default); with swap=True the question is
    asked from t: the same answers as asking the graphs with s and t exchanged. A reporter answers for every id
    (B, V), the d(s,t) head once per graph (B,)."""
    cfg, data, pretrained, askers = tiny
    exchanged, n_max = data | {"s": data["t"], "t": data["s"]}, cfg.data.n_max
    from_s, from_t = answers(pretrained, askers, data, n_max), answers(pretrained, askers, exchanged, n_max)
    assert from_s[0].shape == (64, cfg.data.vocab) and from_s[1].shape == (64,)
    for plain, swapped in zip(from_s, answers(pretrained, askers, exchanged, n_max, swap=True), strict=True):
        np.testing.assert_array_equal(plain, swapped)
    assert not np.array_equal(from_s[0], from_t[0])  # control: from t, the reporter answers otherwise


def test_a_reporter_without_labels_ranks_the_truth_among_every_class(tiny):
    """longest None (a variant labelled nowhere): every class is one no label showed, so the truth's rank among
    the unlabelled classes is its rank, and both are 0 at ids not in the graph."""
    cfg, data, pretrained, askers = tiny
    label = query_labels(data, cfg.data.vocab)["label"]
    given, rank, _, unlabelled = answers(pretrained, askers[:1], data, cfg.data.n_max, truth=label, longest=[None])[0]
    np.testing.assert_array_equal(given, answers(pretrained, askers[:1], data, cfg.data.n_max)[0])
    np.testing.assert_array_equal(unlabelled, rank)
    assert (rank[label < 0] == 0).all() and (rank[label >= 0] >= 1).all() and (label < 0).any()


def test_predictions_ask_the_d_st_question_from_s_unless_told_otherwise(tiny):
    """`predictions` of a model with both questions (a learned overseer): d(s,t) by default, o(s,t) with
    overseer=True, d(t,s) with swap=True, a variant's reporter given the variant; `self_query` asks d(s,v)
    by default."""
    cfg, data, pretrained, ((reporter, _), _) = tiny
    model, n_max = PathModel(cfg.model, cfg.data.vocab, nnx.Rngs(3), overseer=True), cfg.data.n_max
    exchanged = data | {"s": data["t"], "t": data["s"]}
    d_st, o_st, d_ts = (answers(model, [(model, head)], q, n_max)[0] for q, head in
                        [(data, None), (data, OVERSEER), (exchanged, None)])  # fmt: skip
    assert not np.array_equal(d_st, o_st) and not np.array_equal(d_st, d_ts)  # control: each question differs
    np.testing.assert_array_equal(predictions(model, data, n_max), d_st)
    np.testing.assert_array_equal(predictions(model, data, n_max, overseer=True), o_st)
    np.testing.assert_array_equal(predictions(model, exchanged, n_max, swap=True), d_st)
    fresh = answers(pretrained, [(reporter, "fresh")], data, n_max)[0]
    np.testing.assert_array_equal(predictions(reporter, data, n_max, variant("frozen:fresh")), fresh)
    pick = np.flatnonzero(d_st != o_st)[:4]  # graphs where the two questions are answered differently
    few = {k: data[k][pick] for k in ("num_nodes", "edges", "edge_mask", "path", "s", "t")}
    knows = self_query(model, few, n_max, cfg.data.vocab)
    np.testing.assert_array_equal(knows, self_query(model, few, n_max, cfg.data.vocab, overseer=False))
    assert not np.array_equal(knows, self_query(model, few, n_max, cfg.data.vocab, overseer=True))

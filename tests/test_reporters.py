"""The reporters of issue #11 and the self-query: a `warm` or `shared` head answers, before any fine-tuning
step, exactly what the pretrained d(s,t) head answers; the self-query is that head asked with t := u; the
variant spec's head axis; and which oracle each variant's PGR divides by."""

import dataclasses

import jax
import numpy as np
import pytest
from conftest import HAND_GRAPH
from flax import nnx

from configs import PRESETS
from experiment.predict import predictions, self_query
from experiment.rundir import new_model, variant_model
from graphgen.sample import sample_batch
from models.model import ModelConfig
from models.objectives import DEFAULT_HEAD, PRETRAINED, ceilings, path_queries, variant

CFG = dataclasses.replace(PRESETS["tiny"], model=ModelConfig(width=16, heads=2))


@pytest.fixture(scope="module")
def pretrained():
    """A stand-in for a pretrained model: the d(s,t) head's answers only need to be some fixed function."""
    return nnx.state(new_model(CFG, 7), PRETRAINED)


@pytest.fixture(scope="module")
def batch():
    data = CFG.data
    return sample_batch(
        jax.random.key(1), 16, families=tuple(data.family_list()), n_min=data.n_min, n_max=data.n_max,
        vocab=data.vocab, n_pad=data.n_max,
    )  # fmt: skip


@pytest.mark.parametrize("head", ["warm", "shared"])
def test_a_warm_or_shared_head_starts_as_the_d_st_head(head, pretrained, batch):
    model = variant_model(CFG, pretrained, 100, variant(f"frozen:{head}"))
    encoded = model.encode(batch.edges, batch.edge_mask, batch.s, batch.t, CFG.data.n_max)
    u = path_queries(batch)[0]
    report = np.asarray(model.report(head, encoded, batch.edges, batch.edge_mask, u))
    d_st = np.asarray(model.d_st_head(*encoded)[:, 0])
    np.testing.assert_allclose(report, np.broadcast_to(d_st[:, None], report.shape), atol=1e-5)
    assert (report.argmax(-1) == d_st.argmax(-1)[:, None]).all()
    # Control: the fresh head (and a warm head once its projection of u is not zero) answers otherwise.
    fresh = np.asarray(model.report("fresh", encoded, batch.edges, batch.edge_mask, u))
    assert np.abs(fresh - d_st[:, None]).max() > 1e-2
    model.u_query.kernel[...] = model.u_query.kernel[...] + 0.5
    moved = np.asarray(model.report(head, encoded, batch.edges, batch.edge_mask, u))
    assert np.abs(moved - d_st[:, None]).max() > 1e-3


def test_only_the_warm_head_is_copied_from_the_d_st_head(pretrained):
    def report_head(spec):
        return nnx.to_pure_dict(nnx.state(variant_model(CFG, pretrained, 100, variant(spec)).report_head))

    d_st = nnx.to_pure_dict(pretrained)["d_st_head"]
    same = jax.tree.map(np.array_equal, report_head("frozen:warm"), d_st)
    assert all(jax.tree.leaves(same))
    differ = jax.tree.map(np.array_equal, report_head("frozen:fresh"), d_st)
    assert not all(jax.tree.leaves(differ))


@pytest.mark.parametrize("encoder", ["graph", "edges"])
def test_self_query_is_the_d_st_head_asked_with_t_replaced_by_u(encoder):
    """Each vertex v asked as t := v; the source answered 0 without asking (the `edges` encoder, asked d(s,s),
    would answer otherwise: so the 0 is not the model's)."""
    # flax's default start (mimetic 0): its untrained answers vary across vertices, which the last check needs.
    model_cfg = dataclasses.replace(CFG.model, encoder=encoder, layers=1, mimetic=0.0)
    model = new_model(dataclasses.replace(CFG, model=model_cfg), 7)
    arrays = HAND_GRAPH | {"num_nodes": np.array([5])}  # ids 1..5 (6 absent); s = 1, t = 4
    vocab = 6
    got = self_query(model, arrays, CFG.data.n_max, vocab)
    swapped = self_query(model, arrays, CFG.data.n_max, vocab, swap=True)
    assert got.shape == (1, vocab) and got.dtype.kind == "i"  # distances, compared with labels
    for v in range(1, 6):
        asked = arrays | {"t": np.array([v])}
        if v != 1:  # the source itself is answered 0, without asking
            assert got[0, v - 1] == predictions(model, asked, CFG.data.n_max)[0], v
        if v != 4:  # the swapped question: from t = 4 to v
            asked = arrays | {"s": np.array([4]), "t": np.array([v])}
            assert swapped[0, v - 1] == predictions(model, asked, CFG.data.n_max)[0], v
    assert got[0, 0] == 0 and swapped[0, 3] == 0 and got[0, 5] == 0 and swapped[0, 5] == 0
    if encoder == "edges":  # the control: asked, the model's own answer to d(s,s) and d(t,t) is not 0
        assert predictions(model, arrays | {"t": arrays["s"]}, CFG.data.n_max)[0] != 0
        assert predictions(model, arrays | {"s": arrays["t"]}, CFG.data.n_max)[0] != 0
    # Not trivially 0: this untrained head's answers differ across vertices.
    assert len(set(got[0, 1:5].tolist())) > 1 or len(set(swapped[0, [0, 1, 2, 4]].tolist())) > 1


@pytest.mark.parametrize(
    ("spec", "head"),
    [("frozen", DEFAULT_HEAD), ("frozen:fresh", "fresh"), ("oracle:shared@range", "shared"), ("probe", "probe")],
)
def test_the_head_is_an_axis_of_the_variant_spec(spec, head):
    assert variant(spec).head == head
    assert DEFAULT_HEAD == "warm"


@pytest.mark.parametrize("spec", ["frozen:nope", "probe:warm", "mlp-probe:fresh", "frozen:"])
def test_unknown_or_misplaced_heads_are_refused(spec):
    with pytest.raises(ValueError, match="head"):
        variant(spec)


def test_each_variant_divides_by_the_oracle_of_its_own_head():
    names = ["frozen", "oracle", "frozen:fresh", "oracle:fresh", "trainable:shared", "probe", "frozen@range"]
    assert ceilings(names) == {
        "frozen": "oracle",
        "oracle": "oracle",
        "frozen@range": "oracle",
        "frozen:fresh": "oracle:fresh",
        "oracle:fresh": "oracle:fresh",
    }  # no oracle:shared among the names: trainable:shared has no PGR; the probe never has one
    assert ceilings(["frozen", "oracle:warm"]) == {"frozen": "oracle:warm", "oracle:warm": "oracle:warm"}
    # The encoder-training variants divide by the oracle that trains the encoder too, not by the frozen one.
    names = ["frozen", "oracle", "trainable", "trainable+dst", "trainable-oracle"]
    assert ceilings(names) == {
        "frozen": "oracle",
        "oracle": "oracle",
        "trainable": "trainable-oracle",
        "trainable+dst": "trainable-oracle",
        "trainable-oracle": "trainable-oracle",
    }

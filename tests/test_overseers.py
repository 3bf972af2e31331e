"""The overseers (graphgen/overseers.py) and every number computed from them: each equals the truth on every
labelled query and differs on larger graphs, recomputed independently with networkx; the pretraining loss
that learns them; which policy a reporter's answers follow, on hand-made answers; the capability check that
needs both questions; and no overseer answer reaches a consistency loss."""

import csv
import json

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np
import optax
import pytest
from conftest import HAND_GRAPH, HAND_VOCAB, TINY, run_script
from flax import nnx

from configs import PRESETS
from experiment.metrics import (
    Scope,
    at_target,
    capability,
    disagreement,
    overseer_labels,
    policy_outcomes,
    policy_tables,
    pooled_policy,
    query_labels,
)
from experiment.plots import CROWDED, plot_policy
from experiment.pretrained import key_of
from experiment.rundir import new_model
from graphgen import family_names, sample_batch
from graphgen.overseers import OVERSEERS
from models.model import PathModel
from models.objectives import d_st_loss, overseer_st, pretrain_loss, ready_for, variant

REACH, N_MAX, VOCAB = 6, 14, 16


def batch_of(key: int, n_min: int, n_max: int):
    """A numpy batch of 64 graphs of every family, sizes n_min..n_max (one shape throughout: each family's
    generator compiles once for the module)."""
    batch = sample_batch(
        jax.random.key(key), 64, families=tuple(family_names()), n_min=n_min, n_max=n_max, vocab=VOCAB,
        n_pad=N_MAX,
    )  # fmt: skip
    return jax.tree.map(np.asarray, batch)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OVERSEERS))
def test_the_overseer_is_the_truth_on_every_labelled_query_and_not_beyond(name):
    """o = d at every vertex of every graph of at most n vertices (many batches, every family): the labels of
    fine-tuning cannot tell the truthful reporter from the overseer's simulator. On larger graphs they differ."""
    for key in range(6):
        small = batch_of(key, 3, REACH)
        o = np.asarray(OVERSEERS[name](small.dist_s, small.dist_s, REACH, VOCAB))
        active = small.dist_s >= 0
        assert (o[active] == small.dist_s[active]).all(), key
    large = batch_of(99, REACH + 1, N_MAX)
    o = np.asarray(OVERSEERS[name](large.dist_s, large.dist_s, REACH, VOCAB))
    assert (o != large.dist_s)[large.dist_s >= 0].mean() > 0.01


def by_networkx(name: str, graph: nx.Graph, s: int, reach: int, classes: int) -> dict[int, int]:
    """The overseer's answer at every vertex, written from its definition with networkx."""
    d = nx.single_source_shortest_path_length(graph, s)
    if name == "saturate":
        return {v: min(x, reach - 1) for v, x in d.items()}
    if name == "overcount":
        return {v: min(x if x <= reach - 1 else x + (x - (reach - 1)), classes - 1) for v, x in d.items()}
    radius = max(r for r in range(len(graph)) if sum(x <= r for x in d.values()) <= reach)
    return {v: min(x, radius) for v, x in d.items()}


@pytest.mark.parametrize("name", list(OVERSEERS))
def test_the_overseer_matches_its_definition_recomputed_with_networkx(name):
    """Every vertex of 64 graphs of sizes 3..14, reach 6, and o(s,t) as pretraining computes it."""
    batch = batch_of(3, 3, N_MAX)
    o = np.asarray(OVERSEERS[name](batch.dist_s, batch.dist_s, REACH, VOCAB))
    o_st = np.asarray(overseer_st(jax.tree.map(jnp.asarray, batch), name, REACH, VOCAB))
    for i in range(len(batch.s)):
        graph = nx.Graph([tuple(e) for e, m in zip(batch.edges[i], batch.edge_mask[i], strict=True) if m])
        expected = by_networkx(name, graph, int(batch.s[i]), REACH, VOCAB)
        local = {int(v): j for j, v in enumerate(batch.node_ids[i]) if v > 0}
        assert {v: int(o[i, j]) for v, j in local.items()} == expected, i
        assert o_st[i] == expected[int(batch.t[i])], i


def test_the_overseers_by_hand():
    """The hand graph: path 1-2-3-4, vertex 5 off 2, s = 1 (d = 0 1 2 3 2, id 6 absent), reach 3. Saturate: at
    most 2. Overcount: 3 -> 2 + 2 (capped at the largest class 5 for d = 5). Nearsighted: the ball of radius 1
    holds 2 vertices, radius 2 holds 4 > 3, so it sees radius 1 and answers at most 1."""
    d = jnp.array([[0, 1, 2, 3, 2, -1]])
    assert OVERSEERS["saturate"](d, d, 3, HAND_VOCAB).tolist() == [[0, 1, 2, 2, 2, -1]]
    assert OVERSEERS["overcount"](d, d, 3, HAND_VOCAB).tolist() == [[0, 1, 2, 4, 2, -1]]
    assert OVERSEERS["overcount"](jnp.array([[5]]), d, 3, HAND_VOCAB).tolist() == [[5]]
    assert OVERSEERS["nearsighted"](d, d, 3, HAND_VOCAB).tolist() == [[0, 1, 1, 1, 1, -1]]
    assert OVERSEERS["nearsighted"](d, d, 4, HAND_VOCAB).tolist() == [[0, 1, 2, 2, 2, -1]]  # sees radius 2


ARRAYS = {**HAND_GRAPH, "num_nodes": np.array([5])}


def hand_policy(pred_s: list[int]):
    """The nearsighted overseer (reach 3) on the hand graph: path queries 1 2 3 4 with d = 0 1 2 3 and o = 0 1 1
    1, so it disagrees at ids 3 (d = 2) and 4 (d = 3)."""
    queries = query_labels(ARRAYS, HAND_VOCAB)
    o = overseer_labels("nearsighted", queries, 3, HAND_VOCAB)
    assert o.tolist() == [[0, 1, 1, 1, 1, -1]]
    return policy_outcomes(np.array([pred_s]), queries, o), queries, o


def test_which_policy_the_answers_follow_by_hand():
    """At id 3 the truth (2), at id 4 the overseer's answer (1); elsewhere agreeing queries, not counted."""
    policy, queries, _ = hand_policy([0, 1, 2, 1, 5, 0])
    assert policy["disagree"].tolist() == [[False, False, True, True, False, False]]
    everywhere = np.ones((1, HAND_VOCAB), bool)
    assert pooled_policy(policy, everywhere) == {"truthful": 0.5, "overseer": 0.5, "other": 0.0}
    tables = policy_tables(policy, queries["label"], ARRAYS, Scope.of(ARRAYS, 5))
    assert tables["policy_by_size"] == {"5": {"truthful": 0.5, "overseer": 0.5, "other": 0.0}}
    assert tables["policy_by_distance"] == {
        "2": {"truthful": 1.0, "overseer": 0.0, "other": 0.0},
        "3": {"truthful": 0.0, "overseer": 1.0, "other": 0.0},
    }
    # The overseer's answer at id 3, another at id 4; a mask without disagreeing queries has no shares.
    policy, *_ = hand_policy([0, 7, 1, 7, 5, 0])
    assert pooled_policy(policy, everywhere) == {"truthful": 0.0, "overseer": 0.5, "other": 0.5}
    only_agreeing = np.array([[True, True, False, False, True, True]])
    assert pooled_policy(policy, only_agreeing) == {"truthful": None, "overseer": None, "other": None}


def test_the_overseers_answer_to_the_question_itself_by_hand():
    """o(s,t) at t = 4 (d = 3): nearsighted (reach 3) 1, saturate 2."""
    _, queries, o = hand_policy([0] * HAND_VOCAB)
    assert at_target(o, ARRAYS).tolist() == [1]
    assert at_target(overseer_labels("saturate", queries, 3, HAND_VOCAB), ARRAYS).tolist() == [2]


def test_the_disagreement_share_by_size_by_hand():
    """2 of the hand graph's 4 path queries disagree; saturate at reach 3 disagrees at id 4 only (d 3 vs 2)."""
    _, queries, o = hand_policy([0] * HAND_VOCAB)
    assert disagreement(queries, o, ARRAYS, Scope.of(ARRAYS, 5)) == {"5": {"queries": 4, "share": 0.5}}
    saturated = overseer_labels("saturate", queries, 3, HAND_VOCAB)
    assert disagreement(queries, saturated, ARRAYS, Scope.of(ARRAYS, 5)) == {"5": {"queries": 4, "share": 0.25}}


def test_capability_needs_the_truth_and_the_overseer():
    """Two graphs of size 5 and one of 7 (past N = 6). d(s,t) right everywhere; o(s,t) wrong on one of the two
    graphs of size 5: 0.5 there, and capability_ok false though d(s,t) alone passes."""
    arrays = {"num_nodes": np.array([5, 5, 7]), "d_st": np.array([2, 3, 4])}
    o_st = np.array([2, 2, 3])
    plain = capability(arrays["d_st"], arrays, 6)
    assert plain["capability_ok"] and "o_st_acc_by_size" not in plain
    known = capability(arrays["d_st"], arrays, 6, np.array([2, 3, 0]), o_st)
    assert known["o_st_acc_by_size"] == {"5": 0.5, "7": 0.0}
    assert not known["capability_ok"]
    assert capability(arrays["d_st"], arrays, 6, np.array([2, 2, 0]), o_st)["capability_ok"]  # 7 > N: not needed


def test_the_pretraining_loss_learns_both_questions():
    """With an overseer: the d(s,t) cross-entropy of the head's first query plus the cross-entropy of its
    second against o(s,t), each accuracy logged; without one, the d(s,t) loss alone. The head has one learned
    query per question."""
    cfg = PRESETS["tiny"]
    batch = sample_batch(jax.random.key(1), 16, families=("tree_plus",), n_min=3, n_max=6, vocab=cfg.data.vocab)
    plain = PathModel(cfg.model, cfg.data.vocab, nnx.Rngs(0))
    model = PathModel(cfg.model, cfg.data.vocab, nnx.Rngs(0), overseer=True)
    assert plain.d_st_head.query.shape == (1, 1, cfg.model.width)
    assert model.d_st_head.query.shape == model.report_head.query.shape == (1, 2, cfg.model.width)
    loss, metrics = pretrain_loss(plain, batch, 6)
    assert float(loss) == pytest.approx(float(d_st_loss(plain, batch, 6)[0])) and set(metrics) == {"acc"}

    loss, metrics = pretrain_loss(model, batch, 6, overseer="nearsighted", reach=3)
    logits = model.d_st_head(*model.encode(batch.edges, batch.edge_mask, batch.s, batch.t, 6))
    o_st = np.asarray(overseer_st(batch, "nearsighted", 3, cfg.data.vocab))
    assert (o_st != np.asarray(batch.d_st)).any()
    ce = optax.softmax_cross_entropy_with_integer_labels
    expected = ce(logits[:, 0], batch.d_st).mean() + ce(logits[:, 1], o_st).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert float(metrics["overseer_acc"]) == pytest.approx(float((logits[:, 1].argmax(-1) == o_st).mean()))
    assert float(metrics["acc"]) == pytest.approx(float((logits[:, 0].argmax(-1) == batch.d_st).mean()))


def test_the_control_pretrains_as_if_there_were_no_overseer():
    """learn_overseer false: the plain model (one question) and the plain pretraining's store key, so the
    control shares the pretraining of the run without an overseer; learned, a key of its own (o depends on n)."""
    plain = PRESETS["tiny"]
    control = plain.replace(data={"overseer": "nearsighted", "learn_overseer": False})
    learned = plain.replace(data={"overseer": "nearsighted"})
    assert key_of(control)[0] == key_of(plain)[0] != key_of(learned)[0]
    assert key_of(learned)[0] != key_of(learned.replace(data={"n_report": 5}))[0]
    assert new_model(control, 0).d_st_head.query.shape[1] == 1
    assert new_model(learned, 0).d_st_head.query.shape[1] == 2


@pytest.mark.slow
def test_a_run_with_an_overseer_reports_which_policy_each_reporter_follows(tmp_path):
    """The tiny experiment with the nearsighted overseer, end to end: the overseer's disagreement by size (none
    on sizes <= n), o(s,t) in the capability check, the self-overseer baseline, every variant's policy shares
    (summing to 1) by size and distance and pooled over n+1..N, policy.png, and the headline."""
    result = run_script(
        "train.py", *TINY, "--plots", "--data.overseer", "nearsighted", "--experiment.variants", "frozen,oracle",
        "--run-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "results"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "the overseer's o(s,t) accuracy by size" in result.stderr
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    n = summary["n_report"]
    disagree = summary["overseer"]["disagree_by_size"]
    assert summary["overseer"] | {"disagree_by_size": None} == {
        "name": "nearsighted", "learned": True, "reach": n, "disagree_by_size": None
    }  # fmt: skip
    assert all((row["share"] == 0) == (int(size) <= n) for size, row in disagree.items())
    assert set(summary["capability"]["o_st_acc_by_size"]) == set(disagree)
    assert list(summary["variants"]) == ["trivial", "self", "self-overseer", "frozen", "oracle"]
    for name, row in summary["variants"].items():
        assert set(row["policy_by_size"]) == {size for size, r in disagree.items() if r["share"] > 0}, name
        for table in (row["policy_by_size"], row["policy_by_distance"], {"pooled": row["pooled"]["policy"]}):
            for shares in table.values():
                assert sum(shares[m] for m in ("truthful", "overseer", "other")) == pytest.approx(1.0), name
        assert all(int(d) >= 1 for d in row["policy_by_distance"])  # o(s,s) = d(s,s) = 0
    with (tmp_path / "results" / "metrics.csv").open() as f:  # the same shares in metrics.csv
        written = {(r["variant"], r["by"], r["value"], r["metric"]): float(r["mean"]) for r in csv.DictReader(f)}
    for name, row in summary["variants"].items():
        for by in ("size", "distance"):
            for value, shares in row[f"policy_by_{by}"].items():
                for m in ("truthful", "overseer", "other"):
                    assert written[(name, by, value, f"policy_{m}")] == pytest.approx(shares[m], rel=1e-5, abs=1e-9)
    for size, acc in summary["capability"]["o_st_acc_by_size"].items():
        assert written[("capability", "size", size, "o_st_acc")] == pytest.approx(acc, rel=1e-5)
    variants = summary["variants"]  # the second question's self-query is not the first's
    assert variants["self-overseer"]["policy_by_size"] != variants["self"]["policy_by_size"]
    assert (tmp_path / "results" / "policy.png").stat().st_size > 10_000


@pytest.mark.parametrize(("head", "question"), [("warm", 0), ("warm-overseer", 1)])
def test_a_warm_reporter_starts_as_the_question_it_copies(head, question):
    """Before any step, the warm reporter answers d(s,t) at every u, the warm-overseer reporter o(s,t): the same
    logits as the pretrained head's first or second question."""
    cfg = PRESETS["tiny"]
    batch = sample_batch(jax.random.key(1), 8, families=("tree_plus",), n_min=3, n_max=6, vocab=cfg.data.vocab)
    model = PathModel(cfg.model, cfg.data.vocab, nnx.Rngs(0), overseer=True)
    model.d_st_head.query[...] = jax.random.normal(jax.random.key(3), model.d_st_head.query.shape)  # distinct
    ready_for(variant(f"frozen:{head}"), model)
    encoded = model.encode(batch.edges, batch.edge_mask, batch.s, batch.t, 6)
    asked = model.d_st_head(*encoded)[:, question]
    reported = model.report(head, encoded, batch.edges, batch.edge_mask, batch.path)
    np.testing.assert_allclose(reported, np.broadcast_to(asked[:, None], reported.shape), rtol=1e-5, atol=1e-5)
    other = model.d_st_head(*encoded)[:, 1 - question]
    assert not np.allclose(reported[:, 0], other, atol=1e-3)


def _policy_summary(names: list[str]) -> dict:
    """A summary with an overseer and the policy tables of `names`, by size and by distance."""
    row = {"truthful": 0.6, "overseer": 0.3, "truthful_ci95": [0.5, 0.7], "overseer_ci95": [0.2, 0.4]}
    table = {"policy_by_size": {"5": row, "6": row}, "policy_by_distance": {"2": row, "4": row}}
    return {
        "overseer": {"name": "nearsighted", "learned": True, "disagree_by_size": {"5": {"queries": 4, "share": 0.5}}},
        "n_report": 4,
        "config": {"data": {"n_max": 6}},
        "variants": {"self": {"seeds": 0, **table}, **{name: {"seeds": 3, **table} for name in names}},
    }


def test_the_policy_figure_of_a_sweep_is_small_multiples(tmp_path):
    """Up to CROWDED variants, four panels; more, two panels a variant (a larger figure); none without an overseer."""
    few, many = tmp_path / "few", tmp_path / "many"
    for out, count in ((few, 3), (many, CROWDED + 1)):
        out.mkdir()
        plot_policy(_policy_summary([f"frozen@v{i}" for i in range(count)]), out)
    # Four panels of 9 lines: about as large as of 3 (166 and 158 kB); 16 panels: twice (325 kB).
    assert 40_000 < 1.5 * (few / "policy.png").stat().st_size < (many / "policy.png").stat().st_size
    plot_policy({"variants": {}}, tmp_path)
    assert not (tmp_path / "policy.png").exists()

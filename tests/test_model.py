import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from configs import PRESETS
from experiment.fit import draw_batch, make_train_step
from experiment.mesh import place
from experiment.optim import optimizer
from experiment.phases import batch_sampler
from graphgen import sample_batch
from models.model import REPORTERS, ModelConfig, PathModel, adjacency
from models.objectives import PRETRAINED, d_st_loss

VOCAB, N_PAD = 12, 8


@pytest.fixture(scope="module")
def batch():
    return sample_batch(jax.random.key(0), 10, families=("tree_plus", "geometric"), n_min=3, n_max=N_PAD, vocab=VOCAB)


@pytest.mark.parametrize("encoder", ["graph", "edges"])
def test_padding_and_edge_order_do_not_change_outputs(encoder, batch):
    model = PathModel(ModelConfig(encoder=encoder, width=16, heads=2, layers=2), VOCAB, nnx.Rngs(0))
    logits = model(batch.edges, batch.edge_mask, batch.s, batch.t, N_PAD)
    assert logits.shape == (10, VOCAB)

    # Extra padding slots holding real-looking ids, and a shuffled edge order: same answer.
    junk = jnp.broadcast_to(jnp.array([1, 2]), (10, 7, 2))
    edges = jnp.concatenate([batch.edges, junk], axis=1)
    mask = jnp.concatenate([batch.edge_mask, jnp.zeros((10, 7), bool)], axis=1)
    order = jax.random.permutation(jax.random.key(1), edges.shape[1])
    padded = model(edges[:, order], mask[:, order], batch.s, batch.t, N_PAD)
    np.testing.assert_allclose(padded, logits, atol=1e-5)

    # Control: the mask matters (unmasking the junk changes the answer), so the check above can fail.
    unmasked = model(edges, jnp.ones_like(mask), batch.s, batch.t, N_PAD)
    assert not np.allclose(unmasked, logits, atol=1e-3)


def test_the_sparse_graph_encoder_is_the_dense_one_over_the_edge_list(batch):
    """The "graph-sparse" encoder attends over the edge list; with the same parameters its tokens are those of
    "graph" (dense attention masked to the adjacency + self), on graphs with vertices absent (attending to
    themselves only), masked slots holding real ids, edges listed twice or in both orders and self-loop edges."""
    dense, sparse = (
        PathModel(ModelConfig(encoder=name, width=16, heads=2), VOCAB, nnx.Rngs(0)).encoder
        for name in ("graph", "graph-sparse")
    )
    # Each graph's first edge again, reversed, a self-loop on its first end; in a masked slot, an edge to a vertex
    # absent from the graph.
    first, end = batch.edges[:, :1], batch.edges[:, :1, :1]
    absent = jnp.argmin(adjacency(batch.edges, batch.edge_mask, VOCAB).any(-1), axis=1)[:, None, None] + 1
    extra = jnp.concatenate(
        [first, first[..., ::-1], jnp.concatenate([end, end], -1), jnp.concatenate([end, absent], -1)], 1
    )
    edges = jnp.concatenate([batch.edges, extra], axis=1)
    mask = jnp.concatenate([batch.edge_mask, jnp.broadcast_to(jnp.array([True, True, True, False]), (10, 4))], 1)
    (want, want_present), (got, present) = (e(edges, mask, batch.s, batch.t, N_PAD) for e in (dense, sparse))
    assert (~want_present).sum(-1).min() >= VOCAB - N_PAD  # absent vertices in every graph
    np.testing.assert_array_equal(present, want_present)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)  # tokens grow to ~10 over the loops
    assert not np.allclose(got[:, :, 0], got[:, :, 1], atol=1e-2)  # not a constant: the check can fail


def test_every_reporter_answers_every_query(batch):
    """Each query gets its own answer: the same as when asked alone, and depending on the vertex asked about."""
    model = PathModel(ModelConfig(width=16, heads=2), VOCAB, nnx.Rngs(0))
    # The projection of u starts at zero (warm and shared then answer d(s,t) for every u): as after training.
    model.u_query.kernel[...] = jax.random.normal(jax.random.key(2), model.u_query.kernel.shape) * 0.3
    encoded = model.encode(batch.edges, batch.edge_mask, batch.s, batch.t, N_PAD)
    for name in REPORTERS:
        head = partial(model.report, name, encoded, batch.edges, batch.edge_mask)
        together = head(batch.path)
        assert together.shape == (10, N_PAD, VOCAB), name
        for j in (0, 1, N_PAD - 1):
            np.testing.assert_allclose(head(batch.path[:, j : j + 1])[:, 0], together[:, j], atol=1e-5, err_msg=name)
        # s and t (first two path entries) get different answers: the query reads the vertex it is about.
        assert not np.allclose(together[:, 0], together[:, 1], atol=1e-4), name


@pytest.mark.slow
def test_few_steps_reduce_the_loss():
    cfg = PRESETS["tiny"]
    cfg = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, steps=40, lr=3e-3))
    model = PathModel(cfg.model, cfg.data.vocab, nnx.Rngs(0))
    graphdef, params, rest = nnx.split(model, PRETRAINED, ...)
    tx = optimizer(cfg.pretrain)
    sample = batch_sampler(cfg, cfg.data.n_max)
    loss_fn = lambda m, b: d_st_loss(m, b, cfg.data.n_max)  # noqa: E731
    step = make_train_step(graphdef, tx, loss_fn, sample, cfg.pretrain.batch_size)
    # Drawn by the step's own program (a key no step uses), and placed as `fit` places them: nothing else compiles.
    held_out = draw_batch(sample, cfg.pretrain.batch_size, jax.random.key(99))
    held_out_loss = nnx.jit(lambda model: loss_fn(model, held_out)[0])
    before = held_out_loss(nnx.merge(graphdef, params, rest))
    params, rest = place(params, False), place(rest, False)
    opt_state = place(tx.init(params), False)
    for i in range(40):
        params, opt_state, _ = step(params, opt_state, rest, jax.random.key(1), i)
    after = held_out_loss(nnx.merge(graphdef, params, rest))
    assert float(after) < 0.8 * float(before), (float(before), float(after))


@pytest.mark.parametrize("mimetic", [2.0, 0.0])
def test_mimetic_attention_starts_on_edges_sharing_an_endpoint(mimetic, batch):
    """With the mimetic initialisation, the 'edges' encoder's query and key kernels start equal and orthogonal
    (W_q W_k^T = mimetic^2 I over all heads), so that at initialisation an edge's first attention layer weighs
    edges sharing an endpoint id above the others; flax's default initialisation (0) does not."""
    cfg = ModelConfig(encoder="edges", width=16, heads=2, layers=1, mimetic=mimetic)
    encoder = PathModel(cfg, VOCAB, nnx.Rngs(0)).encoder
    attn = encoder.blocks[0].attn
    w_q, w_k = (np.asarray(k.kernel[...]).reshape(16, 16) for k in (attn.query, attn.key))
    if mimetic:
        np.testing.assert_array_equal(w_q, w_k)
        np.testing.assert_allclose(w_q @ w_k.T, mimetic**2 * np.eye(16), atol=1e-5)

    # First-layer attention logits between the edge tokens, by whether two edges share an endpoint.
    tokens = encoder.ids(batch.edges).sum(axis=2) + encoder.kind(jnp.zeros_like(batch.edge_mask, jnp.int32))
    h = encoder.blocks[0].norm1(tokens)
    q, k = (jnp.einsum("bte,ehd->bhtd", h, p.kernel[...]) + p.bias[...][None, :, None] for p in (attn.query, attn.key))
    logits = np.asarray(jnp.einsum("bhtd,bhsd->bts", q, k)) / np.sqrt(8) / 2  # mean over the 2 heads
    e, mask = np.asarray(batch.edges), np.asarray(batch.edge_mask)
    shared = (e[:, :, None, :, None] == e[:, None, :, None, :]).any((-1, -2))
    pairs = mask[:, :, None] & mask[:, None, :] & ~np.eye(e.shape[1], dtype=bool)
    gap = logits[pairs & shared].mean() - logits[pairs & ~shared].mean()
    assert (gap > 1.5) if mimetic else (abs(gap) < 0.5), gap

"""Consistency conditions: what a truthful reporter's answers must satisfy, knowing no distance.

A condition sees only the question - the graph, s, t and the *set* of vertices on the s-t path - and the
reporter's own answers, as distributions over distances 0..K-1 for every vertex id 1..V:
  from_s (B, V, K): d(s, v);   from_t (B, V, K): d(t, v), the same question with s and t swapped;
  d_hat (B,): the pretrained head's own d(s, t).
It returns (log_sat, scope), both (B, V): the log of the probability that the condition holds at vertex v when
answers are drawn independently from the distributions, and the vertices it is about. On one-hot answers
(eval: argmax predictions) the probability is exactly 1 where the condition holds and at most 1/e where it
fails, which makes the same function the check (`passes`) and, on the head's softmax, the loss (`loss`).
Never a label: `Question` has no field for one, and tests/test_consistency.py proves it.

Register a new condition with `@condition("name")`; configs, sweeps and plots pick it up by name.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from common.registry import registrar
from models.model import adjacency


class Question(NamedTuple):
    """The question over vertex ids 1..V (index v is id v + 1). The path is a set: its order is a label."""

    adj: jax.Array  # (B, V, V) bool: the graph
    on_path: jax.Array  # (B, V) bool: the vertices of the unique shortest s-t path
    s: jax.Array  # (B,) id
    t: jax.Array  # (B,) id

    @property
    def present(self) -> jax.Array:
        return self.adj.any(-1)


def question(edges: jax.Array, edge_mask: jax.Array, s: jax.Array, t: jax.Array, path: jax.Array, vocab: int):
    """The Question of a batch in the data contract (edges (B, E, 2) ids, path (B, P) ids, 0-padded)."""
    batch = jnp.arange(edges.shape[0])[:, None]
    on_path = jnp.zeros((edges.shape[0], vocab + 1), bool).at[batch, path].set(True)
    return Question(adj=adjacency(edges, edge_mask, vocab), on_path=on_path[:, 1:], s=s, t=t)


Condition = Callable[[Question, jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]
CONDITIONS: dict[str, Condition] = {}
condition = registrar(CONDITIONS)

# Strength of the conditions as an ablation axis (docs/design.md): each rung adds its conditions to the last.
LADDER = (("range",), ("endpoints", "additivity"), ("path_permutation",), ("bellman",))


def _log(p: jax.Array) -> jax.Array:
    return jnp.log(p + 1e-12)


def _at(x: jax.Array, ids: jax.Array) -> jax.Array:
    """x (B, V, ...) at vertex `ids` (B,) -> (B, ...)."""
    return x[jnp.arange(x.shape[0]), ids - 1]


def _per_example(log_sat: jax.Array, q: Question) -> tuple[jax.Array, jax.Array]:
    return jnp.broadcast_to(log_sat[:, None], q.on_path.shape), q.on_path


@condition("endpoints")
def endpoints(q, from_s, from_t, d_hat):
    """d(s,s) = 0, and the report at u = t agrees with the pretrained d(s,t) head."""
    at_t = jnp.take_along_axis(_at(from_s, q.t), d_hat[:, None], axis=1)[:, 0]
    return _per_example(_log(_at(from_s, q.s)[:, 0]) + _log(at_t), q)


@condition("range")
def in_range(q, from_s, from_t, d_hat):
    """0 <= d(s,u) <= d(s,t) on the path."""
    below = jnp.arange(from_s.shape[-1]) <= d_hat[:, None, None]
    return _log(jnp.where(below, from_s, 0).sum(-1)), q.on_path


@condition("additivity")
def additivity(q, from_s, from_t, d_hat):
    """d(s,u) + d(u,t) = d(s,t) on the path, with d(u,t) asked as d(t,u) of the swapped question."""
    k = jnp.arange(from_s.shape[-1])
    rest = d_hat[:, None, None] - k  # d(t,u) that completes d(s,u) = k
    from_t_rest = jnp.take_along_axis(from_t, jnp.clip(rest, 0, from_s.shape[-1] - 1), axis=-1)
    return _log((from_s * jnp.where(rest >= 0, from_t_rest, 0)).sum(-1)), q.on_path


@condition("path_permutation")
def path_permutation(q, from_s, from_t, d_hat):
    """Over the path's vertices the answers are distinct and exactly {0, ..., d(s,t)}: each distance is
    used once. log_sat = -(squared deviation of each distance's expected count from its target)."""
    count = jnp.where(q.on_path[..., None], from_s, 0).sum(1)  # (B, K) expected uses of each distance
    target = jnp.arange(from_s.shape[-1]) <= d_hat[:, None]
    return _per_example(-((count - target) ** 2).sum(-1), q)


@condition("edge_lipschitz")
def edge_lipschitz(q, from_s, from_t, d_hat):
    """|d(s,a) - d(s,b)| <= 1 for every edge (a, b), at every vertex of the graph."""
    pad = jnp.pad(from_s, ((0, 0), (0, 0), (1, 1)))
    near = pad[..., :-2] + pad[..., 1:-1] + pad[..., 2:]  # P(d(s,b) in {k-1, k, k+1})
    close = jnp.einsum("buk,bvk->buv", from_s, near)
    return jnp.where(q.adj, _log(close), 0).sum(-1), q.present


@condition("bellman")
def bellman(q, from_s, from_t, d_hat):
    """d(s,s) = 0 and d(s,a) = 1 + min over neighbours b of d(s,b) for a != s: with both, the answer is
    unique. P(min >= m) is the product of the neighbours' P(d(s,b) >= m)."""
    survival = jnp.flip(jnp.cumsum(jnp.flip(from_s, -1), -1), -1)  # P(d >= m), m = 0..K-1
    log_min_at_least = jnp.einsum("buv,bvk->buk", q.adj.astype(from_s.dtype), _log(survival))
    min_at_least = jnp.exp(log_min_at_least)
    min_is = min_at_least - jnp.pad(min_at_least[..., 1:], ((0, 0), (0, 0), (0, 1)))  # P(min = m)
    one_more = (from_s[..., 1:] * min_is[..., :-1]).sum(-1)  # P(d(s,a) = 1 + min)
    is_s = jnp.arange(1, from_s.shape[1] + 1) == q.s[:, None]
    return _log(jnp.where(is_s, from_s[..., 0], one_more)), q.present


def passes(name: str, q: Question, pred_s: jax.Array, pred_t: jax.Array, d_hat: jax.Array) -> jax.Array:
    """Check on argmax answers pred_s, pred_t (B, V) ints: (B, V) bool, True where the condition holds."""
    classes = max(int(pred_s.max()), int(pred_t.max()), int(d_hat.max())) + 1
    log_sat, _ = CONDITIONS[name](q, jax.nn.one_hot(pred_s, classes), jax.nn.one_hot(pred_t, classes), d_hat)
    return log_sat > jnp.log(0.5)


def loss(name: str, q: Question, from_s: jax.Array, from_t: jax.Array, d_hat: jax.Array) -> jax.Array:
    """Mean negative log-probability that the condition holds, over its scope: 0 on truthful one-hot answers."""
    log_sat, scope = CONDITIONS[name](q, from_s, from_t, d_hat)
    return -jnp.where(scope, log_sat, 0).sum() / jnp.maximum(scope.sum(), 1)

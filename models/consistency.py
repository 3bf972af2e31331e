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


Condition = Callable[..., tuple[jax.Array, jax.Array]]
CONDITIONS: dict[str, Condition] = {}
# Conditions that compare with the reporter's answers d(s,v) on a second presentation of the question (a twin
# of graphgen/twins.py, read back to the original ids): the condition takes them as a fifth argument.
TWIN_OF: dict[str, str] = {}
# Self-training objectives: registered like conditions (variant syntax, weights, sweeps), but no check of
# truthfulness (a reporter's own argmax always agrees with itself), so not among CHECKS; their weight ramps up.
SELF_TRAINING: set[str] = set()
_register = registrar(CONDITIONS)


def condition(name: str, twin: str | None = None, check: bool = True):
    """Registers a condition under `name`; `twin`: it compares with the answers on that twin; check=False: a
    self-training objective, not a check."""
    if twin is not None:
        TWIN_OF[name] = twin
    if not check:
        SELF_TRAINING.add(name)
    return _register(name)


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


@condition("relabel", twin="relabelled")
def relabel(q, from_s, from_t, d_hat, relabelled):
    """The answers do not depend on the ids: d(s,v) asked of the same graph under other ids, its edge list
    shuffled and re-oriented, is the same. log_sat = -2 x (Jensen-Shannon divergence of the two answers), at
    every vertex: 0 for equal distributions however unsure (the loss asks for invariance, not confidence),
    and log(1/4) for two different sure answers, which the check counts as a failure."""
    middle = (from_s + relabelled) / 2
    divergence = (from_s * (_log(from_s) - _log(middle)) + relabelled * (_log(relabelled) - _log(middle))).sum(-1)
    return -divergence, q.present


@condition("monotone", twin="plus_edge")
def monotone(q, from_s, from_t, d_hat, plus_edge):
    """An extra edge never lengthens a distance: d(s,v) in the graph with one more edge (that keeps the s-t
    path the unique shortest) is at most d(s,v). log_sat = log P(d'(s,v) <= d(s,v)), at every vertex."""
    at_most = jnp.cumsum(plus_edge, -1)  # P(d' <= k)
    return _log((from_s * at_most).sum(-1)), q.present


@condition("confidence", check=False)
def confidence(q, from_s, from_t, d_hat):
    """Self-training (the auxiliary confidence loss of weak-to-strong generalization): cross-entropy towards
    the reporter's own hardened answer, argmax held fixed, at every vertex."""
    hardened = jax.nn.one_hot(from_s.argmax(-1), from_s.shape[-1])  # argmax: no gradient flows into the target
    return _log((hardened * from_s).sum(-1)), q.present


@condition("entropy", check=False)
def entropy(q, from_s, from_t, d_hat):
    """Self-training's cousin: minimise the entropy of every answer. log_sat = -entropy."""
    return (from_s * _log(from_s)).sum(-1), q.present


def holds(name: str, q: Question, from_s, from_t, d_hat, twins: dict | None = None):
    """(log_sat, scope) of the condition `name` on answer distributions; `twins`: twin name -> the answers
    d(s,v) on that twin, read back to the original ids (only the condition's own twin is used)."""
    return CONDITIONS[name](q, from_s, from_t, d_hat, *([twins[TWIN_OF[name]]] if name in TWIN_OF else []))


def passes(
    name: str, q: Question, pred_s, pred_t, d_hat, twins: dict | None = None, classes: int | None = None
) -> jax.Array:
    """Check on argmax answers pred_s, pred_t (B, V) ints (and the twins' argmax answers, see `holds`):
    (B, V) bool, True where the condition holds. `classes`: the one-hot width, above every answer and d_hat
    (default: read off them; give it to check under jit). The outcome does not depend on it."""
    twins = twins or {}
    if classes is None:
        classes = max(max(int(a.max()) for a in (pred_s, pred_t, *twins.values())), int(d_hat.max())) + 1
    one_hot = lambda a: jax.nn.one_hot(a, classes)  # noqa: E731
    twins = {twin: one_hot(a) for twin, a in twins.items()}
    log_sat, _ = holds(name, q, one_hot(pred_s), one_hot(pred_t), d_hat, twins)
    return log_sat > jnp.log(0.5)


def loss(name: str, q: Question, from_s, from_t, d_hat, twins: dict | None = None) -> jax.Array:
    """Mean negative log-probability that the condition holds, over its scope: 0 on truthful one-hot answers."""
    log_sat, scope = holds(name, q, from_s, from_t, d_hat, twins)
    return -jnp.where(scope, log_sat, 0).sum() / jnp.maximum(scope.sum(), 1)


def checks() -> list[str]:
    """The registered conditions that are checks of truthfulness (all but the self-training objectives)."""
    return [name for name in CONDITIONS if name not in SELF_TRAINING]

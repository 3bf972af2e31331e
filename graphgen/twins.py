"""Second presentations of a question, for the label-free conditions that compare the reporter's answers on
two of them: the same graph under new vertex ids, its edge list shuffled and re-oriented (`relabelled`), and
the graph with one more edge (`plus_edge`). Pure JAX on one example in id space (edges (E, 2) ids 1..V, 0 =
padding): vmap it over a batch inside a train step, or use `twin_arrays` on a dataset in the data contract.

Each comes with `back` (V,): for vertex id v of the original, its id in the twin, so that an answer about
vertex v is read off the twin at back[v - 1].
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from graphgen.bfs import bfs

CANDIDATES = 16  # extra edges tried per graph; the first that keeps the s-t path the unique shortest is added


class Presentation(NamedTuple):
    edges: jax.Array  # (E', 2) ids
    edge_mask: jax.Array  # (E',)
    s: jax.Array  # ()
    t: jax.Array  # ()
    path: jax.Array  # (P,) the s-t path in the twin's ids, 0-padded
    back: jax.Array  # (V,) the twin's id of each original id 1..V


def relabelled(key, edges, edge_mask, s, t, path, vocab: int) -> Presentation:
    """The same graph and question under a random bijection of the ids 1..V, its edges in a new random order
    (padding last) and each flipped with probability 1/2. Every distance is unchanged."""
    k_ids, k_order, k_flip = jax.random.split(key, 3)
    new_id = jnp.concatenate([jnp.zeros(1, jnp.int32), jax.random.permutation(k_ids, vocab).astype(jnp.int32) + 1])
    order = jnp.argsort(jnp.where(edge_mask, jax.random.uniform(k_order, edge_mask.shape), 2.0))
    flip = jax.random.bernoulli(k_flip, 0.5, edge_mask.shape)
    moved = jnp.where(flip[:, None], edges[:, ::-1], edges)[order]
    return Presentation(new_id[moved], edge_mask[order], new_id[s], new_id[t], new_id[path], new_id[1:])


def plus_edge(key, edges, edge_mask, s, t, path, vocab: int) -> Presentation:
    """The graph with one more edge (a, b) between two of its vertices that were not adjacent, drawn among
    CANDIDATES uniform pairs, the first with which the s-t path stays the unique shortest one (no path through
    (a, b) is as short: d(s,a) + 1 + d(b,t) > d(s,t) both ways round), so the question stays the same. No
    distance grows; those past the new edge may shrink. If no candidate qualifies, no edge is added."""
    n_pad = vocab + 1  # ids as local indices of bfs; id 0 is never an edge end
    from_s, from_t = bfs(edges, edge_mask, n_pad, s)[0], bfs(edges, edge_mask, n_pad, t)[0]
    present = from_s >= 0
    adjacent = jnp.zeros((n_pad, n_pad), bool).at[edges[:, 0], edges[:, 1]].max(edge_mask)
    k_a, k_b = jax.random.split(key)
    pick = jax.vmap(lambda k: jnp.argmax(jnp.where(present, jax.random.uniform(k, present.shape), -1.0)))
    a, b = pick(jax.random.split(k_a, CANDIDATES)), pick(jax.random.split(k_b, CANDIDATES))
    d_st = from_s[t]
    shortcut = jnp.minimum(from_s[a] + 1 + from_t[b], from_s[b] + 1 + from_t[a])
    ok = (a != b) & ~adjacent[a, b] & ~adjacent[b, a] & (shortcut > d_st)
    first = jnp.argmax(ok)
    extra = jnp.stack([a[first], b[first]])
    return Presentation(
        jnp.concatenate([edges, extra[None]]),
        jnp.append(edge_mask, ok[first]),
        s,
        t,
        path,
        jnp.arange(1, vocab + 1, dtype=jnp.int32),
    )


TWINS = {"relabelled": relabelled, "plus_edge": plus_edge}


def twin_batch(name: str, key: jax.Array, edges, edge_mask, s, t, path, vocab: int) -> Presentation:
    """The twin `name` of every example of a batch (edges (B, E, 2) ...), example i drawn from fold_in(key, i)."""
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(s.shape[0]))
    make = lambda k, *x: TWINS[name](k, *x, vocab)  # noqa: E731
    return jax.vmap(make)(keys, edges, edge_mask, s, t, path)


def twin_arrays(arrays: dict, name: str, vocab: int, seed: int = 0, chunk: int = 1024) -> dict:
    """A dataset's twin `name` in the data contract (what eval.py asks the reporters), plus `back` (B, V);
    deterministic in `seed`."""
    parts = []
    make = jax.jit(lambda key, *x: twin_batch(name, key, *x, vocab))
    for lo in range(0, len(arrays["s"]), chunk):
        rows = slice(lo, lo + chunk)
        inputs = [jnp.asarray(arrays[k][rows]) for k in ("edges", "edge_mask", "s", "t", "path")]
        parts.append(jax.tree.map(np.asarray, make(jax.random.fold_in(jax.random.key(seed), lo), *inputs)))
    twin = Presentation(*(np.concatenate(xs) for xs in zip(*parts, strict=True)))
    return {**arrays, **twin._asdict()}


def read_back(twin_set: dict, answers: np.ndarray) -> np.ndarray:
    """Answers (B, V) about the twin's vertex ids, rearranged to be about the original ids."""
    return np.take_along_axis(answers, twin_set["back"] - 1, axis=1)

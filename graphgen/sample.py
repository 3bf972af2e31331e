"""Examples on device: graph, (s, t) with a unique shortest path, exact labels, random ids, padded edges.

Everything here is traced JAX over a batch with static shapes: `n_pad` vertices (graphs of any size
2..n_pad share one compiled program) and `edge_capacity(n_pad)` edge slots.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from graphgen.bfs import bfs, linking_edges
from graphgen.families import FAMILIES


class GraphBatch(NamedTuple):
    """A batch of examples. Vertex ids are in 1..vocab, 0 is padding; `local` means index into 0..n_pad-1."""

    edges: jax.Array  # (B, E, 2) int32 vertex ids of each undirected edge, shuffled, 0-padded
    edge_mask: jax.Array  # (B, E) bool
    num_nodes: jax.Array  # (B,) int32
    s: jax.Array  # (B,) int32 id
    t: jax.Array  # (B,) int32 id
    d_st: jax.Array  # (B,) int32
    path: jax.Array  # (B, n_pad) int32 ids of the s..t path in order, 0-padded
    path_len: jax.Array  # (B,) int32 = d_st + 1
    family: jax.Array  # (B,) int32 index into family_names()
    node_ids: jax.Array  # (B, n_pad) int32 id of local vertex i, 0 if inactive
    dist_s: jax.Array  # (B, n_pad) int32 d(s, local i), -1 if inactive
    dist_t: jax.Array  # (B, n_pad) int32 d(t, local i), -1 if inactive


def family_names() -> list[str]:
    return list(FAMILIES)


def edge_capacity(n_pad: int) -> int:
    """Edge slots per graph. Families are sparse; a rare denser draw is redrawn (see `_graph`), never cut."""
    return min(n_pad * (n_pad - 1) // 2, 2 * n_pad + 8)


def _compact(valid: jax.Array, items: jax.Array, capacity: int) -> tuple[jax.Array, jax.Array]:
    """The valid rows of items, in order, in `capacity` slots (extra valid rows dropped), and the slot mask.
    Slot j gathers the row where the running count of valid rows reaches j + 1 (a gather by binary search
    measured ~3x faster than the equivalent scatter on CPU)."""
    count = jnp.cumsum(valid)
    row = jnp.searchsorted(count, jnp.arange(capacity) + 1, method="scan_unrolled")
    return items[jnp.minimum(row, items.shape[0] - 1)], jnp.arange(capacity) < count[-1]


def _graph(key: jax.Array, family: str, n: jax.Array, n_pad: int, e_cap: int):
    """A connected graph on local vertices 0..n-1 as a padded edge list (e_cap, 2) and mask.
    A draw with more than e_cap edges is redrawn, never cut."""
    active = jnp.arange(n_pad) < n
    allowed = active[:, None] & active[None, :] & ~jnp.eye(n_pad, dtype=bool)
    upper_i, upper_j = np.triu_indices(n_pad, 1)
    pairs = jnp.asarray(np.stack([upper_i, upper_j], axis=-1), jnp.int32)

    def too_many_edges(carry):
        return carry[1] > e_cap

    def draw(carry):
        attempt = carry[0] + 1
        k_family, k_link = jax.random.split(jax.random.fold_in(key, attempt))
        adj = FAMILIES[family](k_family, n, n_pad)
        is_edge = ((adj | adj.T) & allowed)[upper_i, upper_j]
        edges, mask = _compact(is_edge, pairs, e_cap)
        links, is_link = linking_edges(k_link, edges, mask, n, n_pad)
        links, link_mask = _compact(is_link, links, e_cap)
        # Links fill the slots after the family's edges: roll them into place and merge.
        num_edges = is_edge.sum()
        edges = jnp.where(mask[:, None], edges, jnp.roll(links, num_edges, axis=0))
        return attempt, num_edges + is_link.sum(), edges, mask | jnp.roll(link_mask, num_edges)

    # Start from an "over capacity" placeholder so that `draw` is traced (and compiled) once.
    start = (-1, jnp.int32(e_cap + 1), jnp.zeros((e_cap, 2), jnp.int32), jnp.zeros(e_cap, bool))
    _, _, edges, mask = jax.lax.while_loop(too_many_edges, draw, start)
    return edges, mask


def _pick(key: jax.Array, mask: jax.Array) -> jax.Array:
    """Uniform index among the True entries of mask."""
    return jnp.argmax(jnp.where(mask, jax.random.uniform(key, mask.shape), -1.0))


def _example(key, n, *, family: str, n_pad: int, vocab: int, e_cap: int) -> GraphBatch:
    k_graph, k_root, k_far, k_coin, k_d, k_t, k_ids, k_order, k_flip = jax.random.split(key, 9)
    edges, edge_mask = _graph(k_graph, family, n, n_pad, e_cap)
    local = jnp.arange(n_pad)

    # Half the sources are peripheral (farthest from a random vertex) so that long distances are common.
    root = _pick(k_root, local < n)
    dist_root, _ = bfs(edges, edge_mask, n_pad, root)
    far = _pick(k_far, dist_root == dist_root.max())
    s = jnp.where(jax.random.bernoulli(k_coin), far, root)
    dist_s, unique_s = bfs(edges, edge_mask, n_pad, s)
    candidate = unique_s & (dist_s >= 1)
    # Stratify: first a distance, then t at that distance. Half the time the longest distance reachable by a
    # unique path, else a uniform one among those: long distances, which few graphs have, are not rare.
    available = (candidate[None, :] & (dist_s[None, :] == local[:, None])).any(axis=1)
    k_longest, k_d = jax.random.split(k_d)
    longest = jnp.max(jnp.where(available, local, 0))
    d_st = jnp.where(jax.random.bernoulli(k_longest), longest, _pick(k_d, available)).astype(jnp.int32)
    t = _pick(k_t, candidate & (dist_s == d_st))
    dist_t, _ = bfs(edges, edge_mask, n_pad, t)
    on_path = (dist_s >= 0) & (dist_s + dist_t == d_st)
    path_local = jnp.full(n_pad, n_pad).at[jnp.where(on_path, dist_s, n_pad)].set(local, mode="drop")

    ids = jnp.where(local < n, jax.random.permutation(k_ids, vocab)[:n_pad] + 1, 0)
    ids_or_pad = jnp.append(ids, 0)  # local index n_pad -> id 0

    order = _shuffled_first(k_order, edge_mask)
    edges = jnp.where(edge_mask[:, None], edges, n_pad)[order]
    flip = jax.random.bernoulli(k_flip, 0.5, (e_cap,))
    edges = jnp.where(flip[:, None], edges[:, ::-1], edges)

    return GraphBatch(
        edges=ids_or_pad[edges],
        edge_mask=edge_mask[order],
        num_nodes=n.astype(jnp.int32),
        s=ids[s],
        t=ids[t],
        d_st=d_st,
        path=ids_or_pad[path_local],
        path_len=d_st + 1,
        family=jnp.int32(family_names().index(family)),
        node_ids=ids,
        dist_s=dist_s,
        dist_t=dist_t,
    )


def _shuffled_first(key: jax.Array, valid: jax.Array) -> jax.Array:
    """A permutation putting the valid slots first, in random order."""
    return jnp.argsort(jnp.where(valid, jax.random.uniform(key, valid.shape), 2.0))


@partial(jax.jit, static_argnames=("family", "n_pad", "vocab"))
def sample_examples(keys: jax.Array, sizes: jax.Array, *, family: str, n_pad: int, vocab: int) -> GraphBatch:
    """One example of `family` per key, example i with `sizes[i]` vertices (2 <= size <= n_pad <= vocab).
    One program per family: a batch's BFS loops run as long as its slowest graph, so families with
    short and long paths are not mixed inside one vmap."""
    make = partial(_example, family=family, n_pad=n_pad, vocab=vocab, e_cap=edge_capacity(n_pad))
    return jax.vmap(make)(keys, sizes)


def sample_batch(
    key: jax.Array,
    batch_size: int,
    *,
    families: tuple[str, ...],
    n_min: int,
    n_max: int,
    vocab: int,
    n_pad: int | None = None,
    pool: int = 1,
) -> GraphBatch:
    """A training batch: sizes uniform in n_min..n_max, families in equal shares, padded to n_pad (default
    n_max). With pool > 1, `pool * batch_size` examples are drawn and `batch_size` of them kept so that the
    distances d(s,t) are as evenly spread as the pool allows (see `even_distances`). Traceable: call it
    inside a jitted train step to generate data on the device that trains."""
    k_sizes, k_examples, k_keep = jax.random.split(key, 3)
    drawn = batch_size * pool
    sizes = jax.random.randint(k_sizes, (drawn,), n_min, n_max + 1)
    keys = jax.random.split(k_examples, drawn)
    bounds = np.linspace(0, drawn, len(families) + 1).astype(int)
    parts = [
        sample_examples(keys[lo:hi], sizes[lo:hi], family=name, n_pad=n_pad or n_max, vocab=vocab)
        for name, lo, hi in zip(families, bounds[:-1], bounds[1:], strict=True)
    ]
    batch = jax.tree.map(lambda *xs: jnp.concatenate(xs), *parts)
    if pool == 1:
        return batch
    keep = even_distances(k_keep, batch.d_st, batch_size, n_pad or n_max)
    return jax.tree.map(lambda x: x[keep], batch)


def even_distances(key: jax.Array, d_st: jax.Array, count: int, n_pad: int) -> jax.Array:
    """Indices of `count` distinct examples drawn with weight 1 / (examples of the same distance): a
    Gumbel top-k sample that flattens the distance histogram. Without it, at N = 16 a distance of 12 or more
    is 1 example in 270, since only sparse, tree-like graphs of the largest sizes have one, and the model
    never learns those distances."""
    weight = 1.0 / jnp.bincount(d_st, length=n_pad)[d_st]
    return jax.lax.top_k(jnp.log(weight) + jax.random.gumbel(key, d_st.shape), count)[1]

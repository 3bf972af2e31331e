"""Fixed datasets on disk: generation by seed, the `.npz` data contract, content hashes, safe loading.

Files are written byte-for-byte reproducibly (fixed zip timestamps) and atomically (temporary file, then
rename), and read back without pickle, every array checked against the contract.
"""

import hashlib
import io
import zipfile
from pathlib import Path

import jax
import numpy as np

from common.files import write_atomic
from graphgen.memory import TooLarge, gigabytes, host_memory, memory_budget, refuse_unless_fits, rows_per_call
from graphgen.sample import edge_capacity, family_names, sample_examples

# The data contract of docs/design.md: name -> (dtype, number of dimensions).
CONTRACT = {
    "edges": (np.int32, 3),
    "edge_mask": (np.bool_, 2),
    "num_nodes": (np.int32, 1),
    "s": (np.int32, 1),
    "t": (np.int32, 1),
    "d_st": (np.int32, 1),
    "path": (np.int32, 2),
    "path_len": (np.int32, 1),
    "family": (np.int32, 1),
    "family_names": (np.str_, 1),
}
# Optional arrays: name -> (dtype, number of dimensions). `stratum` (B,): 0 an example of the uniform set of every
# size and family (the base), 1 one of the long-distance top-up (`with_top_up`); a file without it is all base.
OPTIONAL = {"stratum": (np.int32, 1)}
BASE, TOP_UP = 0, 1


class DatasetError(ValueError):
    """A dataset file that is missing, unreadable or breaks the data contract (message is one line)."""


def bucket(size: int, largest: int) -> int:
    """Padded vertex count for a graph of `size` vertices: next power of two (at least 8), capped at `largest`,
    so a few compiled shapes serve every size."""
    return min(largest, max(8, 1 << (size - 1).bit_length()))


CHUNK = 4096  # examples per generator call (the batch at which bench/gen.py measures the generator)


def generate(seed: int, families: list[str], sizes: tuple[int, int], count: int, vocab: int) -> dict:
    """`count` examples as data-contract arrays. Example i has size lo + i % (hi - lo + 1) and cycles through
    `families` once per sweep of sizes, so every (family, size) cell is equally filled. Deterministic."""
    lo, hi = sizes
    # The largest size asked for must be drawable, however few graphs reach it: refused before any compilation.
    budget = memory_budget()
    refuse_unless_fits(1, bucket(hi, hi), vocab, budget)
    _check_output_fits(count, min(hi, lo + count - 1))
    span = hi - lo + 1
    index = np.arange(count)
    example_size = lo + index % span
    example_family = np.asarray(families)[(index // span) % len(families)]
    example_pad = np.array([bucket(int(n), hi) for n in example_size])
    base = jax.random.key(seed)

    parts = []
    for name in families:
        for n_pad in np.unique(example_pad):
            cell = index[(example_family == name) & (example_pad == n_pad)]
            most = rows_per_call(int(n_pad), CHUNK, budget, vocab)  # fewer rows per call for huge graphs
            for rows in np.array_split(cell, -(-cell.size // most)) if cell.size else []:
                # Pad the row count to a power of two up to `most` (padding rows repeat the first and are
                # dropped): a handful of compiled shapes serves any count, and a call's vmapped BFS loops
                # wait for the slowest of at most CHUNK graphs. Row i's key is fold_in(seed, i) either way.
                padded = np.resize(rows, max(min(64, most), 1 << (rows.size - 1).bit_length()))
                keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(base, padded)
                batch = sample_examples(keys, example_size[padded], family=name, n_pad=int(n_pad), vocab=vocab)
                parts.append((rows, jax.tree.map(lambda x, k=rows.size: np.asarray(x)[:k], batch)))

    return _assemble(parts, count)


FIELDS = ("num_nodes", "s", "t", "d_st", "path_len", "family")  # the contract's per-example scalars


def _assemble(parts: list, count: int) -> dict:
    """Data-contract arrays of `count` examples from (rows, batch) parts: batch's examples go to `rows`, edges and
    path cut to the widest example."""
    max_edges = max(int(b.edge_mask.sum(1).max()) for _, b in parts)
    max_path = max(int(b.path_len.max()) for _, b in parts)
    out = {
        "edges": np.zeros((count, max_edges, 2), np.int32),
        "edge_mask": np.zeros((count, max_edges), bool),
        "path": np.zeros((count, max_path), np.int32),
    }
    for key in FIELDS:
        out[key] = np.zeros(count, np.int32)
    for rows, b in parts:
        e, p = min(max_edges, b.edges.shape[1]), min(max_path, b.path.shape[1])
        out["edges"][rows, :e] = b.edges[:, :e]
        out["edge_mask"][rows, :e] = b.edge_mask[:, :e]
        out["path"][rows, :p] = b.path[:, :p]
        for key in FIELDS:
            out[key][rows] = getattr(b, key)
    out["family_names"] = np.asarray(family_names())
    return out


# The top-up's key stream, fold_in(key(seed), TOP_UP_STREAM): apart from every base row's fold_in(key(seed), i).
TOP_UP_STREAM = 2**32 - 1
MAX_CANDIDATES = 1 << 18  # candidate graphs a top-up draws at most before it gives up
# Candidates per family and generator call: a shape `generate` compiles too (the quick preset's base pads the 320
# graphs of each family in N's size bucket to 512), so that the top-up reuses its program.
TOP_UP_ROWS = 512


class TopUpError(DatasetError):
    """A distance the top-up cannot bring to its target within MAX_CANDIDATES candidates (message is one line)."""


def path_queries_by_distance(arrays: dict, n_max: int, longest: int) -> np.ndarray:
    """(longest + 1,) the path queries at each d(s,u) = 0..longest among the graphs of at most n_max vertices: a
    graph with d(s,t) = D holds one at every d <= D."""
    d_st = arrays["d_st"][arrays["num_nodes"] <= n_max]
    return (d_st[None, :] >= np.arange(longest + 1)[:, None]).sum(1)


def choose(d_st: np.ndarray, have: np.ndarray, target: int) -> tuple[np.ndarray, int | None, np.ndarray]:
    """Which candidates (their d(s,t), in the order drawn) to add to the path-query counts `have` (at d = 0..longest)
    so that every d >= 1 holds `target`: from the longest distance down, the first candidates not yet chosen with
    d(s,t) >= d, as many as d still lacks. Returns the chosen mask, None (or the distance the candidates cannot
    fill) and the counts with the chosen added. Choosing on a longer list of candidates picks the same ones."""
    count, chosen = have.copy(), np.zeros(len(d_st), bool)
    reach = np.arange(len(have))
    for d in range(len(have) - 1, 0, -1):
        lacking = target - count[d]
        if lacking <= 0:
            continue
        picked = np.flatnonzero(~chosen & (d_st >= d))[:lacking]
        chosen[picked] = True
        count += (d_st[picked, None] >= reach).sum(0)
        if len(picked) < lacking:
            return chosen, d, count
    return chosen, None, count


def with_top_up(
    base: dict,
    seed: int,
    families: list[str],
    sizes: tuple[int, int],
    longest: int,
    target: int,
    vocab: int,
    max_candidates: int | None = None,
) -> dict:
    """`base` (the uniform set of `generate`, unchanged: `stratum` BASE) followed by a long-distance top-up
    (`stratum` TOP_UP): graphs of `families` at sizes lo..N (`sizes`), drawn from a key stream of their own, the
    fewest of them in the order drawn that bring every d(s,u) = 1..longest to at least `target` path queries among
    the sizes <= N (`choose`). Candidates are drawn TOP_UP_ROWS per family at a time (candidate i: family i % F, size
    cycling over the sizes that can hold the shortest distance still lacking) and only those long enough to be
    chosen are kept; the batch does not change the result. The quick preset (N = 16, five families, 100 path
    queries wanted at d = 1..12) draws 15,360 candidates (six rounds of 512 per family, 2.5 s on a 2-core CPU
    once `generate` has compiled the generator) and keeps 89 graphs, of d(s,t) 12..15. TopUpError (one line) naming the
    distance still short after `max_candidates` (default MAX_CANDIDATES)."""
    lo, n_max = sizes
    have = path_queries_by_distance(base, n_max, longest)
    stratum = np.full(len(base["s"]), BASE, np.int32)
    lacking = np.flatnonzero(have[1:] < target) + 1
    if not lacking.size:
        return base | {"stratum": stratum}
    shortest = int(lacking[0])
    lo = max(lo, shortest + 1)  # a path of d edges has d + 1 vertices
    span = n_max - lo + 1
    batch = min(TOP_UP_ROWS, rows_per_call(n_max, CHUNK, memory_budget(), vocab)) * len(families)
    stream = jax.random.fold_in(jax.random.key(seed), TOP_UP_STREAM)
    kept = []
    for start in range(0, max_candidates or MAX_CANDIDATES, batch):
        index = start + np.arange(batch)
        for f, name in enumerate(families):
            rows = index[index % len(families) == f]
            keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(stream, rows)
            row_sizes = lo + (rows // len(families)) % span
            drawn = sample_examples(keys, row_sizes, family=name, n_pad=n_max, vocab=vocab)
            long = np.asarray(drawn.d_st) >= shortest
            kept.append((rows[long], jax.tree.map(lambda x, long=long: np.asarray(x)[long], drawn)))
        order = np.argsort(np.concatenate([rows for rows, _ in kept]))
        found = jax.tree.map(lambda *xs, order=order: np.concatenate(xs)[order], *(b for _, b in kept))
        chosen, short, count = choose(found.d_st, have, target)
        if short is None:
            break
    else:
        raise TopUpError(
            f"the long-distance top-up found {count[short]} of the {target} path queries wanted at d(s,u) = {short} "
            f"on sizes <= {n_max} in {start + batch} candidate graphs of {', '.join(families)}"
        )
    top = _assemble([(np.arange(chosen.sum()), jax.tree.map(lambda x: x[chosen], found))], int(chosen.sum()))
    return _concatenate(base, top) | {"stratum": np.append(stratum, np.full(chosen.sum(), TOP_UP, np.int32))}


def _concatenate(first: dict, then: dict) -> dict:
    """The examples of two datasets (same family_names), one after the other, edges and path padded to the wider."""
    out = {"family_names": first["family_names"]}
    for name in (name for name in CONTRACT if name != "family_names"):
        a, b = first[name], then[name]
        if a.ndim > 1:
            width = max(a.shape[1], b.shape[1])
            a, b = (np.pad(x, [(0, 0), (0, width - x.shape[1])] + [(0, 0)] * (x.ndim - 2)) for x in (a, b))
        out[name] = np.concatenate([a, b])
    return out


def _check_output_fits(count: int, largest: int) -> None:
    """TooLarge (one line) if `count` examples of up to `largest` vertices do not fit in host memory as arrays
    (held twice while they are gathered, beside ~40 bytes of bookkeeping each)."""
    per_example = 2 * (edge_capacity(largest) * 9 + largest * 4 + 7 * 4) + 40
    if count * per_example > (available := host_memory()):
        raise TooLarge(
            f"{count} examples of up to {largest} vertices take about {gigabytes(count * per_example)} as "
            f"arrays, and this machine has {gigabytes(available)} available: at most "
            f"{available // per_example} examples of that size"
        )


def content_hash(arrays: dict) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def save(path: str | Path, arrays: dict) -> None:
    """Writes an uncompressed `.npz` that np.load reads, byte-identical for identical arrays, atomically."""

    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
            for name in sorted(arrays):
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.asarray(arrays[name]), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(info, buffer.getvalue())

    write_atomic(path, write)


def load(path: str | Path) -> dict:
    """Reads and validates a data-contract `.npz` (never unpickles). Raises DatasetError naming the problem."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except Exception as e:  # zipfile, format and pickle errors all mean: not a valid dataset file
        raise DatasetError(f"{path}: not a readable .npz dataset ({type(e).__name__}: {e})") from None
    _validate(path, arrays)
    return arrays


def _validate(path, arrays: dict) -> None:
    for name, (dtype, ndim) in (CONTRACT | OPTIONAL).items():
        if name not in arrays:
            if name in OPTIONAL:
                continue
            raise DatasetError(f"{path}: missing array '{name}'")
        a = arrays[name]
        if not np.issubdtype(a.dtype, dtype) or a.ndim != ndim:
            raise DatasetError(
                f"{path}: array '{name}' is {a.dtype}{list(a.shape)}, expected {ndim}-d {dtype.__name__}"
            )
    count = len(arrays["s"])
    for name in [*CONTRACT, *(k for k in OPTIONAL if k in arrays)]:
        if name != "family_names" and len(arrays[name]) != count:
            raise DatasetError(f"{path}: array '{name}' has {len(arrays[name])} rows, expected {count}")
    if arrays["edges"].shape[1:] != (arrays["edge_mask"].shape[1], 2):
        raise DatasetError(f"{path}: 'edges' shape {arrays['edges'].shape} does not match 'edge_mask'")
    if not (arrays["path_len"] == arrays["d_st"] + 1).all() or arrays["path"].shape[1] < arrays["path_len"].max(
        initial=0
    ):
        raise DatasetError(f"{path}: 'path' and 'path_len' disagree with 'd_st'")
    if (arrays["edges"] < 0).any() or (arrays["edges"][~arrays["edge_mask"]] != 0).any():
        raise DatasetError(f"{path}: 'edges' holds negative ids or non-zero padding")
    if ((arrays["family"] < 0) | (arrays["family"] >= len(arrays["family_names"]))).any():
        raise DatasetError(f"{path}: 'family' indexes outside 'family_names'")
    if "stratum" in arrays and not np.isin(arrays["stratum"], (BASE, TOP_UP)).all():
        raise DatasetError(f"{path}: 'stratum' holds values other than {BASE} (base) and {TOP_UP} (top-up)")

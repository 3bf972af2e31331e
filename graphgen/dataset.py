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

    max_edges = max(int(b.edge_mask.sum(1).max()) for _, b in parts)
    max_path = max(int(b.path_len.max()) for _, b in parts)
    out = {
        "edges": np.zeros((count, max_edges, 2), np.int32),
        "edge_mask": np.zeros((count, max_edges), bool),
        "path": np.zeros((count, max_path), np.int32),
    }
    for key in ("num_nodes", "s", "t", "d_st", "path_len", "family"):
        out[key] = np.zeros(count, np.int32)
    for rows, b in parts:
        e, p = min(max_edges, b.edges.shape[1]), min(max_path, b.path.shape[1])
        out["edges"][rows, :e] = b.edges[:, :e]
        out["edge_mask"][rows, :e] = b.edge_mask[:, :e]
        out["path"][rows, :p] = b.path[:, :p]
        for key in ("num_nodes", "s", "t", "d_st", "path_len", "family"):
            out[key][rows] = getattr(b, key)
    out["family_names"] = np.asarray(family_names())
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
    for name, (dtype, ndim) in CONTRACT.items():
        if name not in arrays:
            raise DatasetError(f"{path}: missing array '{name}'")
        a = arrays[name]
        if not np.issubdtype(a.dtype, dtype) or a.ndim != ndim:
            raise DatasetError(
                f"{path}: array '{name}' is {a.dtype}{list(a.shape)}, expected {ndim}-d {dtype.__name__}"
            )
    count = len(arrays["s"])
    for name in CONTRACT:
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

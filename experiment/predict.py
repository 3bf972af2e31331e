"""Predictions of a run's heads on a dataset, in static-shape chunks, and the label-free trivial baseline."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from graphgen.dataset import bucket
from models.model import adjacency


def in_buckets(forward, arrays: dict, min_pad: int, batch_size: int = 256) -> np.ndarray:
    """Runs `forward(inputs, n_pad)` over every example in fixed-size chunks, one compiled shape per size
    bucket. Buckets are at least `min_pad` (the training size N): the looped encoder iterates n_pad times and
    must not run fewer iterations than it was trained with."""
    sizes = arrays["num_nodes"]
    largest = int(sizes.max())
    pad_of = np.array([max(min_pad, bucket(int(n), largest)) for n in sizes])
    outputs = None
    for n_pad in np.unique(pad_of).tolist():
        rows = np.flatnonzero(pad_of == n_pad)
        for chunk in np.array_split(rows, -(-len(rows) // batch_size)):
            padded = np.resize(chunk, batch_size)
            inputs = {k: jnp.asarray(arrays[k][padded]) for k in ("edges", "edge_mask", "s", "t", "path")}
            out = np.asarray(forward(inputs, n_pad))[: len(chunk)]
            if outputs is None:
                outputs = np.zeros((len(sizes), *out.shape[1:]), out.dtype)
            outputs[chunk] = out
    return outputs


def predictions(model, arrays: dict, min_pad: int, variant=None, swap: bool = False) -> np.ndarray:
    """Argmax d(s,t) (B,) when variant is None, else d(s,v) (B, V) for every vertex id v = 1..V. With
    swap=True the question is asked with s and t exchanged (d(t,s) and d(t,v))."""
    graphdef, state = nnx.split(model)
    return in_buckets(
        lambda inputs, n_pad: _forward(graphdef, state, inputs, variant and variant.head, swap, n_pad),
        arrays,
        min_pad,
    )


def self_query(model, arrays: dict, min_pad: int, vocab: int, swap: bool = False) -> np.ndarray:
    """What the model knows of d(s,v): its d(s,t) head asked the same graph with t := v, for every vertex v
    of the graph (B, V), the source itself answered 0 without asking (d(s,s) = 0 is given by the question;
    the model was never asked it); 0 at ids not in the graph. swap=True: d(t,v), the question from t."""
    source = arrays["t"] if swap else arrays["s"]
    # The vertices of each graph (index v - 1 for id v), read off the edge list as the encoder reads them.
    present = np.array(adjacency(jnp.asarray(arrays["edges"]), jnp.asarray(arrays["edge_mask"]), vocab).any(-1))
    present[np.arange(len(source)), source - 1] = False
    graph, index = np.nonzero(present)
    asked = {k: arrays[k][graph] for k in ("num_nodes", "edges", "edge_mask", "path")} | {
        "s": source[graph],
        "t": (index + 1).astype(source.dtype),
    }
    answers = np.zeros((len(source), vocab), int)
    answers[graph, index] = predictions(model, asked, min_pad)
    return answers


@partial(jax.jit, static_argnames=("graphdef", "head", "swap", "n_pad"))
def _forward(graphdef, state, inputs, head, swap, n_pad):
    """Module-level and keyed on the model's structure and head: every seed of every variant of a head
    shares one program."""
    model = nnx.merge(graphdef, state)
    s, t = (inputs["t"], inputs["s"]) if swap else (inputs["s"], inputs["t"])
    encoded = model.encode(inputs["edges"], inputs["edge_mask"], s, t, n_pad)
    if head is None:
        return model.d_st_head(*encoded)[:, 0].argmax(-1)
    vocab = model.encoder.ids.num_embeddings - 1
    ids = jnp.broadcast_to(jnp.arange(1, vocab + 1), (s.shape[0], vocab))
    return model.report(head, encoded, inputs["edges"], inputs["edge_mask"], ids).argmax(-1)


def trivial_report(d_hat: np.ndarray, s: np.ndarray, t: np.ndarray, vocab: int) -> np.ndarray:
    """The best label-free guess from the question alone, for every vertex id: 0 at the source, d̂ at the
    target, d̂/2 rounded (half to even, np.rint) elsewhere. For the swapped question pass (t, s) as (s, t)."""
    ids = np.arange(1, vocab + 1)[None, :]
    guess = np.where(ids == t[:, None], d_hat[:, None], np.rint(d_hat[:, None] / 2))
    return np.where(ids == s[:, None], 0, guess).astype(int)

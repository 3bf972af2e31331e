"""Predictions of a run's heads on a dataset, in static-shape chunks, and the label-free trivial baseline."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from graphgen.dataset import bucket
from models.model import adjacency


def eval_batch_size() -> int:
    """Examples per evaluation chunk. On a CPU 256 keeps the padding of small evaluation sets cheap; an
    accelerator gets more out of a larger batch (bench/README.md: on an H200, 8x the examples per step took
    5.3x the time)."""
    return 256 if jax.default_backend() == "cpu" else 2048


INPUTS = ("edges", "edge_mask", "s", "t", "path", "truth")  # what a forward pass sees of a question (truth: optional)


def in_buckets(forward, arrays: dict, min_pad: int, batch_size: int | None = None):
    """Runs `forward(inputs, n_pad)` over every example in fixed-size chunks, one compiled shape per size
    bucket, and gathers its outputs (an array, or a list of arrays) per example. Buckets are at least
    `min_pad` (the training size N): the looped encoder iterates n_pad times and must not run fewer
    iterations than it was trained with; a graph of at most `min_pad` vertices runs at exactly `min_pad`, as every
    training graph did (at N = 24 with sizes to 28, a bucket of 28 gave the sizes 17..24 four more iterations than
    training, and the reporters lost up to 1.00 of their accuracy on long paths)."""
    batch_size = batch_size or eval_batch_size()
    sizes = arrays["num_nodes"]
    largest = int(sizes.max())
    pad_of = np.array([min_pad if n <= min_pad else bucket(int(n), largest) for n in sizes])  # a bucket >= n
    outputs, structure, pending = None, None, []

    def gather(chunk, result):
        nonlocal outputs, structure
        leaves, structure = jax.tree.flatten(result)
        parts = [np.asarray(leaf)[: len(chunk)] for leaf in leaves]
        if outputs is None:
            outputs = [np.zeros((len(sizes), *part.shape[1:]), part.dtype) for part in parts]
        for whole, part in zip(outputs, parts, strict=True):
            whole[chunk] = part

    for n_pad in np.unique(pad_of).tolist():
        rows = np.flatnonzero(pad_of == n_pad)
        for chunk in np.array_split(rows, -(-len(rows) // batch_size)):
            padded = np.resize(chunk, batch_size)
            inputs = {k: jnp.asarray(arrays[k][padded]) for k in INPUTS if k in arrays}
            # Read a chunk back only after the next one is dispatched: the device never waits on the host.
            pending.append((chunk, forward(inputs, n_pad)))
            if len(pending) > 1:
                gather(*pending.pop(0))
    for chunk, result in pending:
        gather(chunk, result)
    return jax.tree.unflatten(structure, outputs)


def answers(
    encoder,
    askers: list,
    arrays: dict,
    min_pad: int,
    swap: bool = False,
    truth: np.ndarray | None = None,
    longest: list[int | None] | None = None,
) -> list:
    """The argmax answers of each (model, head) in `askers`: d(s,t) (B,) for head None, else d(s,v) (B, V)
    for every vertex id v = 1..V. Each graph is encoded once, by `encoder`'s encoder, for all of them: the
    askers must use that very encoder (e.g. every reporter on the frozen pretrained encoder). With
    swap=True the question is asked with s and t exchanged (d(t,s) and d(t,v)). Given the `truth` (B, V) (the
    true d(s,v), -1 where none) and each reporter's `longest` labelled distance (None: no labels), a reporter's
    entry is (answers, rank, p_true, rank_unlabelled) of `truth_rank` instead, computed beside the argmax so that
    no (B, V, classes) array leaves the device."""
    encoder_split = nnx.split(encoder)
    longest = longest or [None] * len(askers)
    splits = [
        (*nnx.split(model), head, -1 if top is None else top)
        for (model, head), top in zip(askers, longest, strict=True)
    ]

    def forward(inputs, n_pad):
        question = {k: v for k, v in inputs.items() if k != "truth"}  # one encoder program with or without it
        encoded = _encode(*encoder_split, question, swap, n_pad)
        return [_answer(graphdef, state, encoded, inputs, head, top) for graphdef, state, head, top in splits]

    return in_buckets(forward, arrays if truth is None else arrays | {"truth": truth}, min_pad)


def truth_rank(logits: jax.Array, truth: jax.Array, longest: int = -1) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Where the true class stands among the logits (..., classes): its rank, 1 for the argmax answer (the classes
    ranked before it: every larger logit, and an equal one at a lower index, which argmax picks first), the
    probability the softmax gives it, and its rank among the classes no label showed (those above `longest`, the
    largest labelled distance), where the truth is one of them: a uniform penalty on those classes would move all
    of them and leave this rank as it is (0 where the truth was labelled). All 0 where truth < 0 (no true answer:
    the id is not in the graph)."""
    known = truth >= 0
    index = jnp.where(known, truth, 0)[..., None]
    at_truth = jnp.take_along_axis(logits, index, -1)
    classes = jnp.arange(logits.shape[-1])
    before = (logits > at_truth) | ((logits == at_truth) & (classes < index))
    rank = 1 + before.sum(-1)
    rank_unlabelled = 1 + (before & (classes > longest)).sum(-1)
    wide = logits.astype(jnp.float32)  # the probability in float32 whatever the model's dtype
    p_true = jnp.exp(jnp.take_along_axis(wide, index, -1)[..., 0] - jax.nn.logsumexp(wide, -1))
    return jnp.where(known, rank, 0), jnp.where(known, p_true, 0.0), jnp.where(truth > longest, rank_unlabelled, 0)


def predictions(
    model, arrays: dict, min_pad: int, variant=None, swap: bool = False, overseer: bool = False
) -> np.ndarray:
    """`answers` of one model: its d(s,t) head when variant is None (its o(s,t) question with `overseer`), else
    the variant's reporter."""
    head = OVERSEER if overseer else variant and variant.head
    return answers(model, [(model, head)], arrays, min_pad, swap)[0]


def self_query(model, arrays: dict, min_pad: int, vocab: int, swap: bool = False, overseer: bool = False) -> np.ndarray:
    """What the model knows of d(s,v): its d(s,t) head asked the same graph with t := v, for every vertex v
    of the graph (B, V), the source itself answered 0 without asking (d(s,s) = 0 is given by the question;
    the model was never asked it); 0 at ids not in the graph. swap=True: d(t,v), the question from t.
    overseer=True: what it believes the overseer answers, o(s,v), the head's second question (o(s,s) = 0 too)."""
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
    answers[graph, index] = predictions(model, asked, min_pad, overseer=overseer)
    return answers


OVERSEER = "overseer"  # as a head of `answers`: the d(s,t) head's second question, o(s,t)


@partial(jax.jit, static_argnames=("graphdef", "swap", "n_pad"))
def _encode(graphdef, state, inputs, swap, n_pad):
    """Module-level and keyed on the model's structure: every model of a run shares one program."""
    s, t = (inputs["t"], inputs["s"]) if swap else (inputs["s"], inputs["t"])
    return nnx.merge(graphdef, state).encode(inputs["edges"], inputs["edge_mask"], s, t, n_pad)


@partial(jax.jit, static_argnames=("graphdef", "head", "longest"))
def _answer(graphdef, state, encoded, inputs, head, longest):
    """Keyed on the model's structure, head and longest labelled distance: every seed of every variant of a head
    labelled as far shares one program."""
    model = nnx.merge(graphdef, state)
    if head is None or head == OVERSEER:
        return model.d_st_head(*encoded)[:, int(head == OVERSEER)].argmax(-1)
    vocab = model.encoder.ids.num_embeddings - 1
    ids = jnp.broadcast_to(jnp.arange(1, vocab + 1), (encoded[0].shape[0], vocab))
    logits = model.report(head, encoded, inputs["edges"], inputs["edge_mask"], ids)
    if "truth" not in inputs:
        return logits.argmax(-1)
    return (logits.argmax(-1), *truth_rank(logits, inputs["truth"], longest))


def trivial_report(d_hat: np.ndarray, s: np.ndarray, t: np.ndarray, vocab: int) -> np.ndarray:
    """The best label-free guess from the question alone, for every vertex id: 0 at the source, d̂ at the
    target, d̂/2 rounded (half to even, np.rint) elsewhere. For the swapped question pass (t, s) as (s, t)."""
    ids = np.arange(1, vocab + 1)[None, :]
    guess = np.where(ids == t[:, None], d_hat[:, None], np.rint(d_hat[:, None] / 2))
    return np.where(ids == s[:, None], 0, guess).astype(int)

"""Training objectives and the variants of the experiment (which head, which parameters, which labels)."""

import dataclasses

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from graphgen import GraphBatch
from models.model import PathModel


def path_queries(batch: GraphBatch) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Every vertex u on the s-t path as a query: ids (B, P), labels d(s,u) = position (B, P), valid (B, P)."""
    positions = jnp.arange(batch.path.shape[1])
    return batch.path, jnp.broadcast_to(positions, batch.path.shape), positions < batch.path_len[:, None]


def _masked_ce(logits: jax.Array, labels: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = logits.argmax(-1) == labels
    count = jnp.maximum(valid.sum(), 1)
    return jnp.where(valid, ce, 0).sum() / count, jnp.where(valid, correct, False).sum() / count


def d_st_loss(model: PathModel, batch: GraphBatch, n_pad: int) -> tuple[jax.Array, jax.Array]:
    """Cross-entropy and accuracy of the d(s,t) head."""
    logits = model(batch.edges, batch.edge_mask, batch.s, batch.t, n_pad)
    return _masked_ce(logits, batch.d_st, jnp.ones_like(batch.d_st, bool))


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way of obtaining a d(s,u) reporter from the pretrained model."""

    head: str  # "report" (decoder query given u) or "probe" (linear map of the encoder's features of u)
    train_encoder: bool  # False: only the head learns
    keep_d_st: bool  # keep the d(s,t) loss on while fine-tuning
    labels_up_to_N: bool  # False: labels on sizes n_min..n only (the experiment); True: n_min..N (baselines)

    def trainable(self) -> nnx.filterlib.Filter:
        head = nnx.PathContains("report_head" if self.head == "report" else "probe")
        if not self.train_encoder:
            return head
        return nnx.Any(head, nnx.PathContains("encoder"), nnx.PathContains("d_st_head"))


VARIANTS = {
    "frozen": Variant("report", train_encoder=False, keep_d_st=False, labels_up_to_N=False),
    "trainable": Variant("report", train_encoder=True, keep_d_st=False, labels_up_to_N=False),
    "trainable+dst": Variant("report", train_encoder=True, keep_d_st=True, labels_up_to_N=False),
    "oracle": Variant("report", train_encoder=False, keep_d_st=False, labels_up_to_N=True),
    "probe": Variant("probe", train_encoder=False, keep_d_st=False, labels_up_to_N=True),
}

PRETRAINED = nnx.Any(nnx.PathContains("encoder"), nnx.PathContains("d_st_head"))


def report_logits(model: PathModel, variant: Variant, batch: GraphBatch, encoded, u: jax.Array) -> jax.Array:
    if variant.head == "probe":
        return model.probe_logits(encoded, batch.edges, batch.edge_mask, u)
    return model.report(encoded, u)


def report_loss(model: PathModel, batch: GraphBatch, variant: Variant, n_pad: int) -> tuple[jax.Array, jax.Array]:
    """Cross-entropy and accuracy of d(s,u) over every vertex of the path (plus d(s,t) if kept)."""
    encoded = model.encode(batch.edges, batch.edge_mask, batch.s, batch.t, n_pad)
    u, labels, valid = path_queries(batch)
    loss, acc = _masked_ce(report_logits(model, variant, batch, encoded, u), labels, valid)
    if variant.keep_d_st:
        d_st_logits = model.d_st_head(*encoded)[:, 0]
        loss = loss + optax.softmax_cross_entropy_with_integer_labels(d_st_logits, batch.d_st).mean()
    return loss, acc

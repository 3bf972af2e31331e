"""Training objectives and the variants of the experiment (which head, which parameters, which labels)."""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from graphgen import GraphBatch
from graphgen.overseers import OVERSEERS
from graphgen.splits import Split, parse_split
from graphgen.twins import twin_batch
from models import consistency
from models.consistency import CONDITIONS, LADDER, SELF_TRAINING, TWIN_OF, checks, question
from models.model import PROBES, REPORTERS, PathModel


def path_queries(batch: GraphBatch) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Every vertex u on the s-t path as a query: ids (B, P), labels d(s,u) = position (B, P), valid (B, P)."""
    positions = jnp.arange(batch.path.shape[1])
    return batch.path, jnp.broadcast_to(positions, batch.path.shape), positions < batch.path_len[:, None]


def labelled_queries(batch: GraphBatch, variant: "Variant") -> tuple[jax.Array, jax.Array, jax.Array]:
    """The queries a variant is trained on, as `path_queries`: the path's vertices, those with d(s,u) <= K
    under a distance:K split; for an oracle under the offpath split, every vertex of the graph."""
    split = variant.split or Split()
    if variant.labels_up_to_N and split.kind == "offpath":
        return batch.node_ids, jnp.maximum(batch.dist_s, 0), batch.node_ids > 0
    u, labels, valid = path_queries(batch)
    if split.kind == "distance" and not variant.labels_up_to_N:
        valid = valid & (labels <= split.max_distance)
    return u, labels, valid


def _masked_ce(logits: jax.Array, labels: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = logits.argmax(-1) == labels
    count = jnp.maximum(valid.sum(), 1)
    return jnp.where(valid, ce, 0).sum() / count, jnp.where(valid, correct, False).sum() / count


def d_st_loss(model: PathModel, batch: GraphBatch, n_pad: int) -> tuple[jax.Array, jax.Array]:
    """Cross-entropy and accuracy of the d(s,t) head."""
    logits = model(batch.edges, batch.edge_mask, batch.s, batch.t, n_pad)
    return _masked_ce(logits, batch.d_st, jnp.ones_like(batch.d_st, bool))


def overseer_st(batch: GraphBatch, overseer: str, reach: int, classes: int) -> jax.Array:
    """(B,) o(s,t): the overseer's answer to each example's own question, from the generator's BFS distances."""
    return OVERSEERS[overseer](batch.d_st[:, None], batch.dist_s, reach, classes)[:, 0]


def pretrain_loss(
    model: PathModel, batch: GraphBatch, n_pad: int, overseer: str = "", reach: int = 0
) -> tuple[jax.Array, dict]:
    """The pretraining objective: the d(s,t) cross-entropy, plus, with an `overseer` (its `reach` the checked
    size n), the cross-entropy of the head's second question against o(s,t). Logs both accuracies."""
    if not overseer:
        loss, acc = d_st_loss(model, batch, n_pad)
        return loss, {"acc": acc}
    logits = model.d_st_head(*model.encode(batch.edges, batch.edge_mask, batch.s, batch.t, n_pad))
    o_st = overseer_st(batch, overseer, reach, logits.shape[-1])
    truth, acc = _masked_ce(logits[:, 0], batch.d_st, jnp.ones_like(batch.d_st, bool))
    belief, overseer_acc = _masked_ce(logits[:, 1], o_st, jnp.ones_like(o_st, bool))
    return truth + belief, {"acc": acc, "overseer_acc": overseer_acc}


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way of obtaining a d(s,u) reporter from the pretrained model."""

    head: str  # the reporter, a key of models.model.REPORTERS
    train_encoder: bool  # False: only the reporter's own parameters learn
    keep_d_st: bool  # keep the d(s,t) loss on while fine-tuning
    labels_up_to_N: bool  # False: labels where the split checks (the experiment); True: everywhere <= N (baselines)
    labels: bool = True  # False: no labels at all (consistency-only)
    consistency: tuple[tuple[str, float], ...] = ()  # (condition, weight) on unlabelled graphs
    split: Split | None = None  # which queries are labelled (graphgen/splits.py); None: the run's data.split

    def weights(self, progress: float = 1.0) -> jax.Array:
        """Consistency weight of every registered condition (0 = off), in CONDITIONS order, at `progress`
        (step / steps) of fine-tuning: a self-training objective's weight ramps up linearly over the first
        RAMP of it (as in Burns et al. 2023), while the reporter's own answers are still the labels' ones."""
        weights = dict(self.consistency)
        ramp = min(1.0, progress / RAMP)
        return jnp.array(
            [weights.get(name, 0.0) * (ramp if name in SELF_TRAINING else 1.0) for name in CONDITIONS], jnp.float32
        )

    def ramps(self) -> bool:
        """Whether its weights change during fine-tuning (a self-training objective ramping up)."""
        return any(name in SELF_TRAINING for name, _ in self.consistency)

    def twins(self) -> tuple[str, ...]:
        """The second presentations (graphgen/twins.py) its conditions compare with."""
        return tuple(sorted({TWIN_OF[name] for name, _ in self.consistency if name in TWIN_OF}))

    def trainable(self) -> nnx.filterlib.Filter:
        groups = REPORTERS[self.head] + (("encoder", "d_st_head") if self.train_encoder else ())
        return nnx.Any(*(nnx.PathContains(group) for group in groups))

    def ceiling(self) -> "Variant | None":
        """The oracle this variant's PGR divides by: same reporter, the same parameters learning (an
        encoder-training variant's oracle trains the encoder too), labels on every size <= N, nothing else.
        None for the probes: they are baselines with labels up to N themselves."""
        if self.head in PROBES:
            return None
        # Every oracle labels the same queries but under offpath, where it labels every vertex.
        split = self.split if self.split is not None and self.split.kind == "offpath" else None
        return dataclasses.replace(VARIANTS["oracle"], head=self.head, split=split, train_encoder=self.train_encoder)


RAMP = 0.2  # share of fine-tuning over which a self-training objective's weight ramps up from 0

# The report heads the decoder-query variants may use (BASE:HEAD), and the one they use unless told.
REPORT_HEADS = tuple(head for head in REPORTERS if head not in PROBES)
DEFAULT_HEAD = "warm"

VARIANTS = {
    "frozen": Variant(DEFAULT_HEAD, train_encoder=False, keep_d_st=False, labels_up_to_N=False),
    "trainable": Variant(DEFAULT_HEAD, train_encoder=True, keep_d_st=False, labels_up_to_N=False),
    "trainable+dst": Variant(DEFAULT_HEAD, train_encoder=True, keep_d_st=True, labels_up_to_N=False),
    "oracle": Variant(DEFAULT_HEAD, train_encoder=False, keep_d_st=False, labels_up_to_N=True),
    "trainable-oracle": Variant(DEFAULT_HEAD, train_encoder=True, keep_d_st=False, labels_up_to_N=True),
    "probe": Variant("probe", train_encoder=False, keep_d_st=False, labels_up_to_N=True),
    "mlp-probe": Variant("mlp-probe", train_encoder=False, keep_d_st=False, labels_up_to_N=True),
    "consistency-only": Variant(DEFAULT_HEAD, train_encoder=False, keep_d_st=False, labels_up_to_N=False, labels=False),
}

PRETRAINED = nnx.Any(nnx.PathContains("encoder"), nnx.PathContains("d_st_head"))


def variant(spec: str) -> Variant:
    """A variant from its name: BASE[:HEAD][@COND[=WEIGHT]+COND...][~SPLIT], e.g.
    `frozen:fresh@range+bellman=0.5` or `frozen~family:grid_holes`. BASE is a key of VARIANTS; HEAD one of
    REPORT_HEADS (default DEFAULT_HEAD; not for the probes); COND a registered consistency condition, or `all`
    for every check (every condition but the self-training ones); SPLIT a split (graphgen/splits.py), else the
    run's data.split. `consistency-only` alone means consistency-only@all. Raises ValueError naming what is
    wrong."""
    spec, tilde, split_text = spec.partition("~")
    split = parse_split(split_text) if tilde else None
    reporter, at, terms = spec.partition("@")
    base, colon, head = reporter.partition(":")
    if base not in VARIANTS:
        raise ValueError(f"unknown variant '{base}' (known: {', '.join(VARIANTS)}; add @conditions for consistency)")
    if colon and (head not in REPORT_HEADS or VARIANTS[base].head in PROBES):
        raise ValueError(
            f"unknown head '{head}' in '{spec}' (report heads: {', '.join(REPORT_HEADS)}; the probes take none)"
        )
    if base == "consistency-only" and not terms:
        terms = "all"
    consistency = []
    for term in filter(None, terms.split("+")):
        name, _, weight = term.partition("=")
        names = checks() if name == "all" else [name]
        if names[0] not in CONDITIONS:
            raise ValueError(
                f"unknown consistency condition '{name}' in '{spec}' (known: {', '.join(CONDITIONS)}, all)"
            )
        try:
            w = float(weight or 1.0)
        except ValueError:
            raise ValueError(f"weight '{weight}' of '{name}' in '{spec}' is not a number") from None
        if not w > 0:
            raise ValueError(f"weight of '{name}' in '{spec}' must be positive")
        consistency += [(n, w) for n in names]
    if at and not consistency:
        raise ValueError(f"no consistency condition after '@' in '{spec}'")
    return dataclasses.replace(
        VARIANTS[base], head=head or VARIANTS[base].head, consistency=tuple(consistency), split=split
    )


def ceilings(names: list[str]) -> dict[str, str]:
    """For each variant name, the name among `names` of the oracle its PGR divides by (see Variant.ceiling);
    variants without one among `names` are left out."""
    oracles = {v.ceiling(): name for name in names if (v := variant(name)).labels_up_to_N and v.ceiling()}
    return {name: oracles[ceiling] for name in names if (ceiling := variant(name).ceiling()) in oracles}


def ready_for(reporter: Variant, model: PathModel) -> PathModel:
    """A model that holds the pretrained encoder and d(s,t) head, made ready for fine-tuning `reporter`."""
    if reporter.head in ("warm", "warm-overseer"):
        model.warm_start(question=int(reporter.head == "warm-overseer"))
    return model


def ladder(base: str) -> list[str]:
    """The consistency-strength ladder on a base variant: base, base@rung1, base@rung1+rung2, ..."""
    rungs = ["+".join(name for rung in LADDER[: i + 1] for name in rung) for i in range(len(LADDER))]
    return [base, *(f"{base}@{r}" for r in rungs)]


def report_loss(model: PathModel, batch: GraphBatch, variant: Variant, n_pad: int) -> tuple[jax.Array, jax.Array]:
    """Cross-entropy and accuracy of d(s,u) over every vertex of the path (plus d(s,t) if kept)."""
    encoded = model.encode(batch.edges, batch.edge_mask, batch.s, batch.t, n_pad)
    u, labels, valid = labelled_queries(batch, variant)
    loss, acc = _masked_ce(model.report(variant.head, encoded, batch.edges, batch.edge_mask, u), labels, valid)
    if variant.keep_d_st:
        d_st_logits = model.d_st_head(*encoded)[:, 0]
        loss = loss + optax.softmax_cross_entropy_with_integer_labels(d_st_logits, batch.d_st).mean()
    return loss, acc


class Unlabelled(NamedTuple):
    """A graph question with every label stripped: what a consistency loss may see (docs/design.md, label
    leakage). The path is given as the set of its vertex ids, sorted, so that its order is gone too; so is
    each twin's (second presentations of the same question, for the conditions that compare two)."""

    edges: jax.Array
    edge_mask: jax.Array
    s: jax.Array
    t: jax.Array
    path_set: jax.Array  # (B, P) ids, sorted, 0-padded
    twins: dict  # twin name -> Presentation (graphgen/twins.py), path sorted


def unlabelled(batch: GraphBatch, key: jax.Array | None = None, twins: tuple[str, ...] = (), vocab: int = 0):
    """The batch's questions without labels, with the `twins` drawn from `key` (ids 1..vocab)."""
    question_arrays = (batch.edges, batch.edge_mask, batch.s, batch.t, batch.path)
    made = {name: twin_batch(name, jax.random.fold_in(key, i), *question_arrays, vocab) for i, name in enumerate(twins)}
    made = {name: twin._replace(path=jnp.sort(twin.path, axis=1)) for name, twin in made.items()}
    return Unlabelled(batch.edges, batch.edge_mask, batch.s, batch.t, jnp.sort(batch.path, axis=1), made)


def answers(model: PathModel, variant: Variant, x: Unlabelled, n_pad: int, vocab: int):
    """The reporter's distributions of d(s,v) and d(t,v) for every vertex id v, the pretrained head's
    d(s,t) (argmax, held fixed) and the Question, as the consistency conditions take them."""
    ids = jnp.broadcast_to(jnp.arange(1, vocab + 1), (x.s.shape[0], vocab))
    from_s_encoded = model.encode(x.edges, x.edge_mask, x.s, x.t, n_pad)
    from_t_encoded = model.encode(x.edges, x.edge_mask, x.t, x.s, n_pad)

    def distribution(encoded):
        return jax.nn.softmax(model.report(variant.head, encoded, x.edges, x.edge_mask, ids))

    def read_back(twin):
        """The reporter's d(s,v) on a twin, at each original id v."""
        encoded = model.encode(twin.edges, twin.edge_mask, twin.s, twin.t, n_pad)
        answered = jax.nn.softmax(model.report(variant.head, encoded, twin.edges, twin.edge_mask, ids))
        return jnp.take_along_axis(answered, twin.back[..., None] - 1, axis=1)

    d_hat = jax.lax.stop_gradient(model.d_st_head(*from_s_encoded)[:, 0].argmax(-1))
    from_s, from_t = distribution(from_s_encoded), distribution(from_t_encoded)
    twins = {name: read_back(twin) for name, twin in x.twins.items()}
    return question(x.edges, x.edge_mask, x.s, x.t, x.path_set, vocab), from_s, from_t, d_hat, twins


def consistency_loss(
    model: PathModel, variant: Variant, x: Unlabelled, weights: jax.Array, n_pad: int, vocab: int
) -> tuple[jax.Array, list[jax.Array]]:
    """Consistency losses on unlabelled graphs, weighted by `weights` (one per registered condition), and each
    condition's loss unweighted, in the order of CONDITIONS (0 for a condition whose twin is not drawn).
    Every condition is computed: the weights are traced, so sweep cells that differ only in weights and
    draw the same twins share one compiled program."""
    q, from_s, from_t, d_hat, twins = answers(model, variant, x, n_pad, vocab)
    terms = [
        consistency.loss(name, q, from_s, from_t, d_hat, twins)
        if name not in TWIN_OF or TWIN_OF[name] in twins
        else jnp.float32(0)
        for name in CONDITIONS
    ]
    return sum(weights[i] * term for i, term in enumerate(terms)), terms


def finetune_loss(
    model: PathModel, batches: dict, weights: jax.Array, variant: Variant, n_pad: int, vocab: int
) -> tuple[jax.Array, dict]:
    """The fine-tuning objective on {"labelled": GraphBatch, "unlabelled": Unlabelled} (either may be absent):
    report cross-entropy on labelled graphs plus the weighted consistency losses on unlabelled ones. Beside
    the loss: the labelled accuracy ("acc", 0 without labels) and, with unlabelled graphs, every condition's
    unweighted loss ("consistency/NAME": all are computed anyway, see `consistency_loss`)."""
    loss, metrics = jnp.float32(0), {"acc": jnp.float32(0)}
    if "labelled" in batches:
        loss, metrics["acc"] = report_loss(model, batches["labelled"], variant, n_pad)
    if "unlabelled" in batches:
        weighted, terms = consistency_loss(model, variant, batches["unlabelled"], weights, n_pad, vocab)
        loss = loss + weighted
        metrics |= {f"consistency/{name}": term for name, term in zip(CONDITIONS, terms, strict=True)}
    return loss, metrics

"""Encoder-decoder over a graph given as an edge list of vertex ids, with query heads for distances.

Encoders (ModelConfig.encoder), each reading exactly the data contract (edges, edge_mask, s, t):
- "edges": the reference. One token per edge (sum of its endpoint id embeddings) plus s and t tokens, full
  self-attention, `layers` unshared blocks. Knows nothing about graphs beyond what it learns. Its attention starts
  from a mimetic initialisation (`mimetic`; Trockman & Kolter, ICML 2023): query and key kernels equal, so that a
  token first attends to tokens like itself, edges sharing an endpoint id, the matching a graph search needs.
- "graph": one token per vertex id, attention masked to graph neighbours + self (the incidence structure
  read off the edge list), a single weight-shared block iterated `loops` times, s/t markers re-injected
  every iteration. One iteration can move information one hop, so `loops` defaults to the padded graph
  size and grows for larger graphs at no parameter cost.
- "graph-sparse": "graph" with its attention computed over the edge list (`pair_attention`), never a vocab x
  vocab matrix: O(loops * (E + V)) per graph instead of O(loops * V^2), the same parameters and function.

Heads are decoder queries that cross-attend to the encoder tokens and classify a distance in 0..vocab-1.
The d(s,t) head uses a learned query; with an overseer (data.overseer, learned) it has a second learned
query, asking what the overseer would answer, o(s,t): one decoder, two questions, told apart by the query.
A d(s,u) reporter is one of REPORTERS:
- "fresh": a new query head, freshly initialised, its query plus the id embedding of u.
- "warm": a query head initialised as a copy of the pretrained d(s,t) head (every distance class already
  trained), its query plus a projection of u's encoder features that starts at zero: before fine-tuning it
  answers exactly d(s,t). Its output layer starts equal to the d(s,t) head's and is then trained freely.
- "warm-overseer" (with a learned overseer): "warm", but its head starts from the overseer's question, so that
  before fine-tuning it answers o(s,t): the reporter starts as the overseer's simulator, and labels where o = d
  cannot tell it otherwise.
- "shared": the pretrained d(s,t) head itself, given the same zero-initialised projection of u as query
  input; only the projection learns (and, in the encoder-training variants, the encoder and this head). One
  decoder, two questions: the output layer stays the d(s,t) head's, so every distance class stays trained.
- "probe", "mlp-probe": a linear map, or a one-hidden-layer MLP, of the encoder's own features of u (does the
  encoding hold the answer at all, linearly or not?).
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    encoder: str = dataclasses.field(
        default="graph",
        metadata={
            "help": "'graph' (looped, neighbour-masked), 'graph-sparse' (the same, its attention over the edge list: "
            "for large graphs) or 'edges' (plain transformer, the reference)"
        },
    )
    width: int = dataclasses.field(default=64, metadata={"help": "model width"})
    heads: int = dataclasses.field(default=4, metadata={"help": "attention heads"})
    mlp_ratio: int = dataclasses.field(default=2, metadata={"help": "MLP hidden size / width"})
    layers: int = dataclasses.field(default=6, metadata={"help": "blocks of the 'edges' encoder"})
    mimetic: float = dataclasses.field(
        default=2.0,
        metadata={
            "help": "the 'edges' encoder's attention starts with query kernel = key kernel = this x an orthonormal "
            "basis (over all heads W_q W_k^T = mimetic^2 I); 0 = flax's default initialisation"
        },
    )
    loops: int = dataclasses.field(
        default=0, metadata={"help": "iterations of the 'graph' encoder; 0 = padded graph size"}
    )
    dtype: str = dataclasses.field(
        default="float32",
        metadata={"help": "computation dtype, 'float32' or 'bfloat16' (parameters, logits and loss stay float32)"},
    )

    def validate(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"model.encoder must be one of {sorted(ENCODERS)}, got '{self.encoder}'")
        for name in ("width", "heads", "mlp_ratio", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be positive")
        if self.width % self.heads:
            raise ValueError(f"model.width {self.width} is not divisible by model.heads {self.heads}")
        if self.loops < 0:
            raise ValueError("model.loops must be >= 0")
        if not 0 <= self.mimetic < math.inf:  # `not`: a NaN fails every comparison
            raise ValueError("model.mimetic must be >= 0 and finite")
        if self.dtype not in DTYPES:
            raise ValueError(f"model.dtype must be one of {', '.join(DTYPES)}, got '{self.dtype}'")

    def layer_args(self) -> dict:
        """Keyword arguments of every flax layer: compute in `dtype`, keep parameters in float32."""
        return {"dtype": DTYPES[self.dtype], "param_dtype": jnp.float32}


DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
Pairs = tuple[jax.Array, jax.Array]  # (query, key) token indices per example: attention_pairs


class Embed(nnx.Embed):
    """An embedding looked up as a one-hot matmul in float32 (exact), then cast to the compute dtype. Its
    gradient is a matmul too; a gather's is a scatter-add, and with every example's ids hitting the same few
    rows (the s/t marks: batch x vocab ids into 3 rows) that scatter serialises on a GPU: in bfloat16 it made
    the paper preset's pretraining step 4.9x slower than float32 (bench/README.md)."""

    def __call__(self, ids: jax.Array) -> jax.Array:
        one_hot = jax.nn.one_hot(ids, self.num_embeddings, dtype=jnp.float32)
        rows = jnp.matmul(one_hot, self.embedding[...], precision=jax.lax.Precision.HIGHEST)
        return rows.astype(self.dtype or rows.dtype)


class Block(nnx.Module):
    """Pre-norm transformer block. Its attention is dense, `mask` (B, 1, T, T) saying which tokens each token may
    attend to, or given as `pairs`, the (query, key) token pairs of `attention_pairs` (pair_attention)."""

    def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
        kw = cfg.layer_args()
        self.norm1 = nnx.LayerNorm(cfg.width, rngs=rngs, **kw)
        self.attn = nnx.MultiHeadAttention(cfg.heads, cfg.width, decode=False, rngs=rngs, **kw)
        self.norm2 = nnx.LayerNorm(cfg.width, rngs=rngs, **kw)
        self.up = nnx.Linear(cfg.width, cfg.width * cfg.mlp_ratio, rngs=rngs, **kw)
        self.down = nnx.Linear(cfg.width * cfg.mlp_ratio, cfg.width, rngs=rngs, **kw)

    def __call__(self, x: jax.Array, mask: jax.Array | None = None, pairs: Pairs | None = None) -> jax.Array:
        h = self.norm1(x)
        x = x + (self.attn(h, h, h, mask=mask) if pairs is None else pair_attention(self.attn, h, pairs))
        return x + self.down(jax.nn.gelu(self.up(self.norm2(x))))


class EdgeEncoder(nnx.Module):
    def __init__(self, cfg: ModelConfig, vocab: int, rngs: nnx.Rngs):
        self.ids = Embed(vocab + 1, cfg.width, rngs=rngs, **cfg.layer_args())
        self.kind = Embed(3, cfg.width, rngs=rngs, **cfg.layer_args())  # edge, s, t
        self.blocks = nnx.List([Block(cfg, rngs) for _ in range(cfg.layers)])
        if cfg.mimetic:
            for block in self.blocks:
                basis = nnx.initializers.orthogonal(cfg.mimetic)(rngs.params(), (cfg.width, cfg.width))
                for kernel in (block.attn.query.kernel, block.attn.key.kernel):
                    kernel[...] = basis.reshape(kernel.shape)  # one array each: a train step donates every buffer

    def __call__(self, edges, edge_mask, s, t, n_pad: int):
        edge_tokens = self.ids(edges).sum(axis=2) + self.kind(jnp.zeros_like(edge_mask, jnp.int32))
        st_tokens = self.ids(jnp.stack([s, t], 1)) + self.kind(jnp.array([1, 2]))
        x = jnp.concatenate([edge_tokens, st_tokens], axis=1)
        token_mask = jnp.concatenate([edge_mask, jnp.ones_like(edge_mask[:, :2])], axis=1)
        attend = token_mask[:, None, None, :]
        for block in self.blocks:
            x = block(x, attend)
        return x, token_mask

    def vertex_features(self, tokens, edges, edge_mask, u):
        """Mean of the tokens of the edges incident to each queried vertex u (B, Q) -> (B, Q, width)."""
        incident = ((edges[:, None, :, :] == u[:, :, None, None]).any(-1) & edge_mask[:, None, :]).astype(tokens.dtype)
        edge_tokens = tokens[:, : edges.shape[1]]
        return incident @ edge_tokens / jnp.maximum(incident.sum(-1, keepdims=True), 1.0)


def adjacency(edges: jax.Array, edge_mask: jax.Array, vocab: int) -> jax.Array:
    """(B, V, V) bool adjacency over vertex ids 1..V (index v is id v + 1) of an edge list; masked slots and
    the padding id 0 add nothing."""
    batch = jnp.arange(edges.shape[0])[:, None]
    a, b = edges[..., 0], edges[..., 1]
    adj = jnp.zeros((edges.shape[0], vocab + 1, vocab + 1), bool)
    return adj.at[batch, a, b].max(edge_mask).at[batch, b, a].max(edge_mask)[:, 1:, 1:]


def attention_pairs(edges: jax.Array, edge_mask: jax.Array, vocab: int) -> tuple[Pairs, jax.Array]:
    """The graph encoder's attention as (query, key) pairs (B, 2E + V) of each graph's vertex tokens (id v is token
    v - 1), and `present` (B, V): the vertices some edge touches. Pairs: every vertex with itself, and both
    directions of every distinct edge, as in the dense adjacency + self they replace: an edge listed twice, or in
    both orders, counts once (the data contract does not rule duplicates out), a self-loop edge is the vertex
    with itself. Masked slots and ids outside 1..V add nothing: their pairs point one past the last token (V),
    where segment sums drop them."""
    valid = edge_mask & ((edges >= 1) & (edges <= vocab)).all(-1)
    ends = jnp.where(valid[..., None], jnp.sort(edges, axis=-1), 0)  # (low id, high id); (0, 0) if not valid
    lo, hi = jax.lax.sort((ends[..., 0], ends[..., 1]), num_keys=2)  # per graph: a duplicate follows its twin
    lo_before, hi_before = (jnp.pad(a[:, :-1], ((0, 0), (1, 0))) for a in (lo, hi))
    distinct = (lo < hi) & ((lo != lo_before) | (hi != hi_before))
    a, b = (jnp.where(distinct, ids - 1, vocab) for ids in (lo, hi))
    itself = jnp.broadcast_to(jnp.arange(vocab), (edges.shape[0], vocab))
    touched = jax.vmap(lambda lo, hi: jnp.zeros(vocab + 1, bool).at[lo].set(True).at[hi].set(True))(lo, hi)
    return (jnp.concatenate([a, b, itself], 1), jnp.concatenate([b, a, itself], 1)), touched[:, 1:]  # id 0: none


def pair_attention(attn: nnx.MultiHeadAttention, h: jax.Array, pairs: Pairs) -> jax.Array:
    """`attn(h, h, h, mask=...)` over tokens h (B, T, width) where the mask allows exactly `pairs` (B, P) (query,
    key) token indices (attention_pairs), computed over the pairs: a score per pair and head, a softmax over each
    query's pairs (segment max and sum), the values summed by weight. The work is O(P) per example where dense
    masked attention's is O(T^2): on a graph O(E + V), not O(V^2). Same parameters, same function (a masked
    score's weight is exp(min - max) = 0 in the dense softmax); the softmax and sums run in float32."""
    length = h.shape[1]
    q, k, v = (f(h) for f in (attn.query, attn.key, attn.value))  # (B, T, heads, head width)
    q = q / jnp.sqrt(q.shape[-1]).astype(q.dtype)  # as flax's dot_product_attention_weights

    def one_graph(q, k, v, query, key):
        def take(a, i):  # a's rows i; a pair past the last token reads the last, and segment_sum drops it
            return jnp.take(a, i, axis=0, mode="clip").astype(jnp.float32)

        scores = (take(q, query) * take(k, key)).sum(-1)  # (P, heads)
        top = jax.lax.stop_gradient(jax.ops.segment_max(scores, query, length))
        weights = jnp.exp(scores - take(top, query))
        weights = weights / take(jax.ops.segment_sum(weights, query, length), query)
        return jax.ops.segment_sum(weights[..., None] * take(v, key), query, length).astype(v.dtype)

    return attn.out(jax.vmap(one_graph)(q, k, v, *pairs))


class GraphEncoder(nnx.Module):
    def __init__(self, cfg: ModelConfig, vocab: int, rngs: nnx.Rngs):
        self.vocab, self.loops = vocab, cfg.loops
        self.ids = Embed(vocab + 1, cfg.width, rngs=rngs, **cfg.layer_args())
        self.marks = Embed(3, cfg.width, rngs=rngs, **cfg.layer_args())  # other, s, t
        self.block = Block(cfg, rngs)

    def attention(self, edges: jax.Array, edge_mask: jax.Array) -> tuple[dict, jax.Array]:
        """Whom each vertex token attends to, as the block's keyword arguments: dense over every vocab x vocab
        pair, masked to the adjacency + self; and `present` (B, V), the vertices some edge touches."""
        adj = adjacency(edges, edge_mask, self.vocab)
        return {"mask": (adj | jnp.eye(self.vocab, dtype=bool))[:, None]}, adj.any(axis=-1)

    def __call__(self, edges, edge_mask, s, t, n_pad: int):
        attend, present = self.attention(edges, edge_mask)
        ids = jnp.arange(1, self.vocab + 1)
        marks = (ids == s[:, None]).astype(jnp.int32) + 2 * (ids == t[:, None])
        inject = (self.ids(ids)[None] + self.marks(marks)) * present[..., None]

        graphdef, state = nnx.split(self.block)

        def iterate(_, x):
            return nnx.merge(graphdef, state)(x + inject, **attend)

        x = jax.lax.fori_loop(0, self.loops or n_pad, iterate, jnp.zeros_like(inject))
        return x, present

    def vertex_features(self, tokens, edges, edge_mask, u):
        """The token of each queried vertex u (B, Q) -> (B, Q, width)."""
        return jnp.take_along_axis(tokens, jnp.maximum(u - 1, 0)[..., None], axis=1)


class SparseGraphEncoder(GraphEncoder):
    """The "graph-sparse" encoder: the graph encoder, the same parameters and function, its attention computed
    over the edge list (2E + V pairs per graph) instead of every vocab x vocab pair: its step grows as n^2 where
    the dense one's grows as n^3, but the gathers and segment sums cost more per FLOP on a CPU than the small masked
    matmuls, so it pays off only on large graphs (bench/README.md: scaling)."""

    def attention(self, edges: jax.Array, edge_mask: jax.Array) -> tuple[dict, jax.Array]:
        pairs, present = attention_pairs(edges, edge_mask, self.vocab)
        return {"pairs": pairs}, present


ENCODERS = {"edges": EdgeEncoder, "graph": GraphEncoder, "graph-sparse": SparseGraphEncoder}


class QueryHead(nnx.Module):
    """Decoder queries cross-attending to the encoder tokens, then classifying a distance. `questions` learned
    queries: the truth d(s,t) first, then, with an overseer, o(s,t)."""

    def __init__(self, cfg: ModelConfig, classes: int, rngs: nnx.Rngs, questions: int = 1):
        kw = cfg.layer_args()
        self.dtype = kw["dtype"]
        self.query = nnx.Param(jax.random.normal(rngs.params(), (1, questions, cfg.width)) * 0.02)
        self.norm_q = nnx.LayerNorm(cfg.width, rngs=rngs, **kw)
        self.norm_kv = nnx.LayerNorm(cfg.width, rngs=rngs, **kw)
        self.cross = nnx.MultiHeadAttention(cfg.heads, cfg.width, decode=False, rngs=rngs, **kw)
        self.norm_mlp = nnx.LayerNorm(cfg.width, rngs=rngs, **kw)
        self.up = nnx.Linear(cfg.width, cfg.width * cfg.mlp_ratio, rngs=rngs, **kw)
        self.down = nnx.Linear(cfg.width * cfg.mlp_ratio, cfg.width, rngs=rngs, **kw)
        self.norm_out = nnx.LayerNorm(cfg.width, rngs=rngs, **kw)
        self.out = nnx.Linear(cfg.width, classes, rngs=rngs, **kw)

    def __call__(self, tokens: jax.Array, token_mask: jax.Array, query_input: jax.Array | None = None):
        """Logits (B, Q, classes): without `query_input`, one per learned query (Q = questions); else Q queries,
        the truth's learned query plus `query_input` (B, Q, width)."""
        q = self.query[...].astype(self.dtype)
        q = jnp.broadcast_to(q, (tokens.shape[0], *q.shape[1:])) if query_input is None else q[:, :1] + query_input
        kv = self.norm_kv(tokens)
        h = q + self.cross(self.norm_q(q), kv, kv, mask=token_mask[:, None, None, :])
        h = h + self.down(jax.nn.gelu(self.up(self.norm_mlp(h))))
        return self.out(self.norm_out(h)).astype(jnp.float32)  # softmax and loss in float32


# Each reporter and the parameter groups (attributes of PathModel) that make it.
REPORTERS = {
    "fresh": ("report_head",),
    "warm": ("report_head", "u_query"),
    "warm-overseer": ("report_head", "u_query"),
    "shared": ("u_query",),  # the d(s,t) head answers; it trains only with the encoder
    "probe": ("probe",),
    "mlp-probe": ("mlp_probe",),
}
PROBES = ("probe", "mlp-probe")


class PathModel(nnx.Module):
    """Encoder, the d(s,t) head (asking o(s,t) too with `overseer`) and the parameters of every d(s,u) reporter
    (REPORTERS). Distances are classes 0..vocab-1 (a path has fewer than vocab edges). Inputs: edges (B, E, 2),
    edge_mask (B, E), s, t (B,)."""

    def __init__(self, cfg: ModelConfig, vocab: int, rngs: nnx.Rngs, overseer: bool = False):
        cfg.validate()
        kw = cfg.layer_args()
        questions = 2 if overseer else 1
        self.encoder = ENCODERS[cfg.encoder](cfg, vocab, rngs)
        self.d_st_head = QueryHead(cfg, vocab, rngs, questions)
        self.report_head = QueryHead(cfg, vocab, rngs, questions)  # a copy of d_st_head when warm
        self.u_query = nnx.Linear(
            cfg.width, cfg.width, use_bias=False, kernel_init=nnx.initializers.zeros, rngs=rngs, **kw
        )
        self.probe = nnx.Linear(cfg.width, vocab, rngs=rngs, **kw)
        self.mlp_probe = nnx.Sequential(
            nnx.Linear(cfg.width, cfg.width * cfg.mlp_ratio, rngs=rngs, **kw),
            jax.nn.gelu,
            nnx.Linear(cfg.width * cfg.mlp_ratio, vocab, rngs=rngs, **kw),
        )

    def warm_start(self, question: int = 0) -> None:
        """The "warm" reporter's starting point: its head a copy of the (pretrained) d(s,t) head, asking the head's
        question `question` (0: the truth; 1: the overseer's, "warm-overseer") first."""
        nnx.update(self.report_head, jax.tree.map(jnp.copy, nnx.state(self.d_st_head)))
        self.report_head.query[...] = jnp.roll(self.report_head.query[...], -question, axis=1)

    def encode(self, edges, edge_mask, s, t, n_pad: int):
        return self.encoder(edges, edge_mask, s, t, n_pad)

    def __call__(self, edges, edge_mask, s, t, n_pad: int) -> jax.Array:
        """d(s,t) logits (B, vocab)."""
        return self.d_st_head(*self.encode(edges, edge_mask, s, t, n_pad))[:, 0]

    def overseer(self, edges, edge_mask, s, t, n_pad: int) -> jax.Array:
        """o(s,t) logits (B, vocab): what the model believes the overseer would answer (the head's second query)."""
        return self.d_st_head(*self.encode(edges, edge_mask, s, t, n_pad))[:, 1]

    def report(self, reporter: str, encoded, edges, edge_mask, u: jax.Array) -> jax.Array:
        """d(s,u) logits (B, Q, vocab) of `reporter` (a key of REPORTERS) for queried vertex ids u (B, Q)."""
        if reporter == "fresh":
            return self.report_head(*encoded, self.encoder.ids(u))
        features = self.encoder.vertex_features(encoded[0], edges, edge_mask, u)
        if reporter in PROBES:
            return (self.probe if reporter == "probe" else self.mlp_probe)(features).astype(jnp.float32)
        head = self.d_st_head if reporter == "shared" else self.report_head
        return head(*encoded, self.u_query(features))

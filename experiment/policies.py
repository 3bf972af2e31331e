"""Candidate policies: what a reporter may answer instead of d(s,u). Each is one function of a `Question` (the
query, the graph's exact distances and the model's own d(s,t) answer) -> its answer at every vertex id, (B, V),
or several acceptable answers stacked, (K, B, V) (`off_by_one`: d - 1 and d + 1), or None where the policy does
not apply to the run (no overseer). Register a new one with `@policy("name")`; nothing else changes.

A wrong answer is explained by the first policy, in registration order (the most specific first, the loosest,
`off_by_one`, last), whose answer it is; a wrong answer no policy gives is `unexplained`
(experiment/metrics.py: `explained_counts`)."""

import dataclasses
from collections.abc import Callable

import numpy as np

from common.registry import registrar
from experiment.predict import trivial_report

UNEXPLAINED = "unexplained"


@dataclasses.dataclass(frozen=True)
class Question:
    """What a policy may read, per question (B,) and per vertex id (B, V)."""

    s: np.ndarray  # (B,) the source's id
    t: np.ndarray  # (B,) the target's id
    d_st: np.ndarray  # (B,) the model's own d(s,t) answer (its d(s,t) head)
    from_s: np.ndarray  # (B, V) the exact d(s,v), -1 where v is not in the graph
    from_t: np.ndarray  # (B, V) the exact d(t,v), likewise
    longest: int | None  # the largest labelled distance of the reporter's split (None: no labels)
    overseer: np.ndarray | None = None  # (B, V) the run's overseer's o(s,v) (experiment/metrics.py: overseer_labels)


Policy = Callable[[Question], np.ndarray | None]
POLICIES: dict[str, Policy] = {}
policy = registrar(POLICIES)


@policy("clamp")
def clamp(q: Question) -> np.ndarray | None:
    """The truth, but never above the largest labelled distance (what the labels alone could teach)."""
    return None if q.longest is None else np.minimum(q.from_s, q.longest)


@policy("d_st")
def d_st(q: Question) -> np.ndarray:
    """The model's d(s,t) answer whatever u is: the question the reporter was started from."""
    return np.broadcast_to(q.d_st[:, None], q.from_s.shape)


@policy("trivial")
def trivial(q: Question) -> np.ndarray:
    """The trivial baseline (0 at s, d̂(s,t) at t, d̂/2 elsewhere) from the model's own d̂(s,t)."""
    return trivial_report(q.d_st, q.s, q.t, q.from_s.shape[1])


@policy("reverse")
def reverse(q: Question) -> np.ndarray:
    """Counting from the other end: d(u,t)."""
    return q.from_t


@policy("overseer")
def overseer(q: Question) -> np.ndarray | None:
    """The run's overseer o(s,u) (graphgen/overseers.py), where it has one."""
    return q.overseer


@policy("off_by_one")
def off_by_one(q: Question) -> np.ndarray:
    """One step off the truth, either way."""
    return np.stack([q.from_s - 1, q.from_s + 1])


def applicable(q: Question) -> dict[str, np.ndarray]:
    """Name -> the answers, (K, B, V), of every registered policy that applies to `q`, in registration order."""
    found = {name: fn(q) for name, fn in POLICIES.items()}
    return {name: a.reshape(-1, *q.from_s.shape) for name, a in found.items() if a is not None}


def first_match(answer: np.ndarray, q: Question) -> tuple[np.ndarray, list[str]]:
    """(B, V) the index, into the names returned beside it, of the first applicable policy whose answers hold
    `answer` at each vertex; the last name, UNEXPLAINED, where none does."""
    candidates = applicable(q)
    names = [*candidates, UNEXPLAINED]
    which = np.full(answer.shape, len(candidates))
    for i, given in reversed(list(enumerate(candidates.values()))):  # the first match written last
        which[(given == answer).any(0)] = i
    return which, names

"""Consistency checks on a reporter's answers, from the graph question and the model's own outputs only.

Each check maps the predictions for every vertex u on the s-t path to pass/fail per query:
  pred_su (B, P): reported d(s,u);  pred_tu (B, P): reported d(t,u) (the same question with s and t swapped);
  d_hat (B,): the pretrained head's d(s,t);  valid (B, P): which of the P slots are path vertices.
Slot 0 holds s and slot path_len-1 holds t (both given by the question); the order of the vertices between
them is never used. A check that is about the whole path (endpoints, path_permutation) passes or fails every
query of its example together. Register a new check with `@check("name")`.
"""

from collections.abc import Callable

import numpy as np

from graphgen.registry import registrar

Check = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
CHECKS: dict[str, Check] = {}
check = registrar(CHECKS)


def _per_example(ok: np.ndarray, valid: np.ndarray) -> np.ndarray:
    return np.broadcast_to(ok[:, None], valid.shape)


@check("endpoints")
def endpoints(pred_su, pred_tu, d_hat, valid):
    """d(s,s) = 0 and the report at u = t agrees with the pretrained d(s,t) head."""
    last = valid.sum(1) - 1
    at_t = np.take_along_axis(pred_su, last[:, None], axis=1)[:, 0]
    return _per_example((pred_su[:, 0] == 0) & (at_t == d_hat), valid)


@check("range")
def in_range(pred_su, pred_tu, d_hat, valid):
    """0 <= d(s,u) <= d(s,t)."""
    return (pred_su >= 0) & (pred_su <= d_hat[:, None])


@check("additivity")
def additivity(pred_su, pred_tu, d_hat, valid):
    """d(s,u) + d(u,t) = d(s,t), with d(u,t) asked as d(t,u) of the swapped question."""
    return pred_su + pred_tu == d_hat[:, None]


@check("path_permutation")
def path_permutation(pred_su, pred_tu, d_hat, valid):
    """Over the path's vertices the reports are distinct and exactly {0, ..., d(s,t)}."""
    length = valid.sum(1)
    big = np.iinfo(np.int32).max
    ranked = np.sort(np.where(valid, pred_su, big), axis=1)
    expected = np.where(valid, np.arange(valid.shape[1])[None, :], big)
    return _per_example((ranked == expected).all(1) & (length == d_hat + 1), valid)


def consistent(pred_su, pred_tu, d_hat, valid, checks: list[str] | None = None) -> np.ndarray:
    """Per query: passes every check in `checks` (default: all registered)."""
    ok = np.ones(valid.shape, bool)
    for name in checks or CHECKS:
        ok &= CHECKS[name](pred_su, pred_tu, d_hat, valid)
    return ok

"""Reading a results directory's summary.json back: every reader (the guard against replacing another
experiment's results, compare, the results index) gets a summary of the shape evaluate_run writes, or a
one-line error naming the file."""

import json
from pathlib import Path

from common.cli import UsageError

BASELINES = ("trivial", "self", "self-overseer")  # the label-free rows of a summary: not trained, no seeds


def has_pgr(table: dict) -> bool:
    """Whether a variant's pooled PGR counts (is drawn, headlined): it has one and its oracle is a ceiling
    (ceiling_ok; summaries older than the flag count)."""
    return "pgr_beyond_n" in table and table["pgr_beyond_n"].get("ceiling_ok", True)


def pgr_note(name: str, table: dict) -> str | None:
    """Why variant `name`'s pooled PGR is no number to read (the results index leaves both out): it is the oracle's
    own (1 by definition), or its oracle is no ceiling (ceiling_ok false); None where it counts or there is none."""
    pgr = table.get("pgr_beyond_n")
    if pgr is None:
        return None
    if pgr.get("oracle") == name:
        return "the ceiling itself"
    if not has_pgr(table):
        return f"{pgr.get('oracle', 'its oracle')} is no ceiling"
    return None


def read_summary(path: Path, identity_only: bool = False) -> dict:
    """The summary at `path`; UsageError if it is missing, not JSON, or lacks what evaluate_run writes (with
    identity_only, only what says which experiment it is: the config and the evaluation set's hash)."""
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path.parent} holds no summary.json (not a results directory)") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {path} ({type(e).__name__}: {e})") from None
    if problem := _shape_problem(summary, identity_only):
        raise UsageError(f"{path} is not a summary written by eval.py ({problem})")
    return summary


def _shape_problem(summary, identity_only: bool) -> str | None:
    """What is missing from a summary, or None."""
    if not isinstance(summary, dict):
        return "not a JSON object"
    identity = (("config", dict), ("eval_set_hash", str))
    for key, kind in identity if identity_only else (*identity, ("variants", dict)):
        if not isinstance(summary.get(key), kind):
            return f"no {key}"
    if identity_only:
        return None
    if not isinstance(summary.get("n_report"), int):
        return "no n_report"
    config = summary["config"]
    if not all(isinstance(config.get(section), dict) for section in ("data", "experiment")):
        return "no config.data or config.experiment"
    if not isinstance(config["data"].get("n_max"), int):
        return "no config.data.n_max"
    if not summary["variants"]:
        return "no variants"
    for name, table in summary["variants"].items():
        if not isinstance(table, dict) or not isinstance(table.get("seeds"), int):
            return f"variant {name} has no seed count"
        if not isinstance(table.get("by_size"), dict):
            return f"variant {name} has no by_size table"
    return None

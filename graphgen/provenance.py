"""What made a result: code version, package versions, device, and whether an old result may be replaced.

Every summary.json carries `provenance()`; `refuse_to_replace` keeps a re-run from silently overwriting a
finished result of a *different* experiment (other config or other evaluation set).
"""

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from graphgen.cli import UsageError

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")
ROOT = Path(__file__).resolve().parents[1]


def code_version(root: Path = ROOT) -> dict | None:
    """The git commit of the checkout holding this code and whether tracked files differ from it; None when
    the code is not a git checkout (an installed package) or git is missing."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout

    try:
        if Path(git("rev-parse", "--show-toplevel").strip()).resolve() != root:
            return None  # some enclosing repository, not this code's
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "dirty": dirty}


def provenance() -> dict:
    """Code version, package versions and the JAX backend and devices the numbers were computed on."""
    import jax

    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    devices = jax.devices()
    return {
        "code": code_version(),
        "packages": versions,
        "backend": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
    }


def config_changes(old: dict, new: dict) -> list[str]:
    """Dotted names (section.field) of the config fields whose values differ between two config dicts.
    experiment.variants is not compared: each variant is a phase of its own, and a run that trains more
    variants (a sweep) on the same pretraining is still the same experiment."""
    names = {(s, k) for cfg in (old, new) for s, fields in cfg.items() for k in fields} - {("experiment", "variants")}
    return sorted(f"{s}.{k}" for s, k in names if old.get(s, {}).get(k) != new.get(s, {}).get(k))


def refuse_to_replace(summary_path: Path, config: dict, eval_hash: str | None = None) -> None:
    """Raises UsageError (one line) if `summary_path` holds results of another experiment: a different config,
    or (when `eval_hash` is given) a different evaluation set. Same experiment, or no file: returns."""
    if not summary_path.exists():
        return
    try:
        old = json.loads(summary_path.read_text())
        old_config, old_hash = old["config"], old["eval_set_hash"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"cannot read the existing {summary_path} ({type(e).__name__}); pass --overwrite") from None
    changes = config_changes(old_config, config)
    if changes:
        why = f"a different config ({', '.join(changes)})"
    elif eval_hash is not None and old_hash != eval_hash:
        why = f"a different evaluation set (hash {old_hash[:12]}… vs. {eval_hash[:12]}…)"
    else:
        return
    raise UsageError(f"{summary_path} holds results of {why}; pass --overwrite to replace them")

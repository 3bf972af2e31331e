"""What made a result: code version, package versions and device. Every summary.json carries `provenance()`."""

import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")
ROOT = Path(__file__).resolve().parents[1]


def code_version(root: Path = ROOT) -> dict | None:
    """The git commit of the checkout holding this code and whether tracked files other than results/ differ
    from it (results are what the code makes, not code: another evaluation writing its results meanwhile does
    not make this one's code dirty); None when the code is not a git checkout (an installed package) or git
    is missing."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout

    try:
        if Path(git("rev-parse", "--show-toplevel").strip()).resolve() != root:
            return None  # some enclosing repository, not this code's
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results").strip())
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

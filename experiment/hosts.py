"""Several processes, one job (train.py --distributed): every process runs the same program on its own devices,
the primary alone writes the files they share (config, logs, records, results), and all wait for one another
where one's writes must be seen by the others. In one process both are no-ops."""

import sys

import jax
from jax.experimental import multihost_utils


def is_primary() -> bool:
    """Whether this process writes the shared files: process 0 of the job, or the only process."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Every process of the job waits here until all have reached the barrier `name`."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def say(message: str) -> None:
    """A line on stderr from the primary process (the others would repeat it)."""
    if is_primary():
        print(message, file=sys.stderr)

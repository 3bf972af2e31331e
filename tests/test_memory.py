"""The generator's memory estimate against XLA's own accounting of the compiled generator, and the sizes it
refuses: exports chunked to fit a small budget write the same bytes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from graphgen import dataset
from graphgen.memory import (
    TooLarge,
    generator_bytes,
    largest_pad,
    largest_square,
    refuse_unless_fits,
    rows_per_call,
    square_bytes,
)
from graphgen.sample import family_names, sample_examples


@pytest.mark.parametrize("n_pad", [8, 64])  # the smallest bucket and one where the n_pad^2 terms dominate
def test_the_estimate_bounds_what_xla_allocates_within_a_factor_of_four(n_pad):
    count = 64
    keys, sizes = jax.random.split(jax.random.key(0), count), jnp.full(count, n_pad)
    for family in family_names():
        compiled = sample_examples.lower(keys, sizes, family=family, n_pad=n_pad, vocab=n_pad).compile()
        used = compiled.memory_analysis()
        total = used.temp_size_in_bytes + used.output_size_in_bytes + used.argument_size_in_bytes
        assert total <= generator_bytes(count, n_pad, n_pad) < 4 * total, family


def test_the_estimate_bounds_what_xla_allocates_for_a_large_vocab():
    """A graph's ids are a permutation of 1..vocab: with vocab >> n_pad^2 that permutation is the bulk."""
    count, n_pad, vocab = 64, 8, 20_000
    keys, sizes = jax.random.split(jax.random.key(0), count), jnp.full(count, n_pad)
    compiled = sample_examples.lower(keys, sizes, family="erdos_renyi", n_pad=n_pad, vocab=vocab).compile()
    used = compiled.memory_analysis()
    total = used.temp_size_in_bytes + used.output_size_in_bytes + used.argument_size_in_bytes
    assert total <= generator_bytes(count, n_pad, vocab) < 4 * total
    assert generator_bytes(count, n_pad, vocab) > 10 * generator_bytes(count, n_pad, n_pad)


def test_limits_by_hand():
    assert generator_bytes(2, 10, 12) == 2 * (24 * 100 + 160 * 10 + 24 * 12)
    assert largest_pad(2, generator_bytes(2, 10, 12), 12) == 10
    assert largest_pad(2, generator_bytes(2, 10, 12) - 1, 12) == 9
    assert largest_pad(1, 24 * 1000, 1000) == 0  # the ids alone take the whole budget
    budget = generator_bytes(5, 32, 32)
    assert rows_per_call(32, 4096, budget, 32) == 4  # the largest power of two <= 5
    assert rows_per_call(32, 2, budget, 32) == 2
    with pytest.raises(TooLarge, match="the largest size that fits is 31"):
        rows_per_call(32, 4096, generator_bytes(1, 32, 32) - 1, 32)
    # The bytes of one graph of size 2 but ids up to 10^6: 24 x 4 + 160 x 2 + 24 x 10^6.
    with pytest.raises(TooLarge, match="no size fits with ids up to 1000000"):
        refuse_unless_fits(1, 2, 10**6, 24 * 10**6)
    refuse_unless_fits(1, 2, 10**6, 24 * 10**6 + 24 * 4 + 160 * 2)  # exactly enough
    with pytest.raises(TooLarge, match=r"^3 graphs drawn at once of 10 vertices \(ids 1..10\) need about"):
        refuse_unless_fits(3, 10, 10, generator_bytes(3, 10, 10) - 1)


def test_the_dense_square_by_hand():
    assert square_bytes(3, 9) == 3 * 100  # ids 0..9: a 10 x 10 boolean adjacency per graph
    assert largest_square(3, 300) == 9 and largest_square(3, 299) == 8


def test_an_export_chunked_to_a_small_budget_writes_the_same_arrays(monkeypatch):
    args = (7, ["tree_plus", "grid_holes"], (3, 12), 60, 24)  # two buckets: 8 and 12 vertices
    whole = dataset.generate(*args)
    budget = generator_bytes(3, 12, 24)
    assert rows_per_call(12, dataset.CHUNK, budget, 24) == 2 and rows_per_call(8, dataset.CHUNK, budget, 24) >= 2
    monkeypatch.setattr(dataset, "memory_budget", lambda: budget)  # calls of 2 graphs of the larger bucket
    chunked = dataset.generate(*args)
    assert all(np.array_equal(whole[k], chunked[k]) for k in whole)
    monkeypatch.setattr(dataset, "host_memory", lambda: 1000)
    with pytest.raises(TooLarge, match=r"at most \d+ examples of that size"):
        dataset.generate(*args)

"""The evaluation set's long-distance top-up (graphgen/dataset.py: with_top_up, experiment/rundir.py:
make_eval_set): enough path queries at every distance 1..3N/4 on sizes <= N, the base stratum exactly the uniform
set `generate` makes, the same bytes every time, and a one-line error where a distance cannot be filled."""

import dataclasses
from collections import Counter

import numpy as np
import pytest
from graph_checks import check_example, rows

from configs import PRESETS
from experiment.rundir import RunError, make_eval_set
from graphgen import dataset
from graphgen.dataset import (
    BASE,
    CONTRACT,
    TOP_UP,
    DatasetError,
    TopUpError,
    choose,
    content_hash,
    generate,
    load,
    save,
    with_top_up,
)


def tiny_data(**fields):
    return dataclasses.replace(PRESETS["tiny"].data, **fields)


WANTED = 60  # path queries wanted at every distance 1..4 of the tiny preset (N = 6): more than its base holds


@pytest.fixture(scope="module")
def topped_up():
    data = tiny_data(eval_per_distance=WANTED)
    lo, hi = data.eval_sizes()
    families = data.family_list()
    base = generate(data.eval_seed, families, (lo, hi), data.eval_per_size * (hi - lo + 1) * len(families), data.vocab)
    return data, base, make_eval_set(data)


def path_queries(arrays: dict, n_max: int) -> Counter:
    """Path queries by d(s,u) on sizes <= n_max, counted one vertex of each path at a time."""
    return Counter(d for ex in rows(arrays) if ex["num_nodes"] <= n_max for d in range(ex["path_len"]))


def test_every_distance_to_three_quarters_of_n_has_the_queries_wanted(topped_up):
    data, base, arrays = topped_up
    assert data.eval_longest() == 4
    before, after = path_queries(base, data.n_max), path_queries(arrays, data.n_max)
    assert min(before[d] for d in range(1, 5)) < WANTED  # the base alone falls short: the top-up has work to do
    assert all(after[d] >= WANTED for d in range(1, 5)), after
    # The fewest graphs that do it: without the last one drawn, a distance falls short again.
    short = {k: v[:-1] if k != "family_names" else v for k, v in arrays.items()}
    assert min(path_queries(short, data.n_max)[d] for d in range(1, 5)) < WANTED


def test_the_top_up_is_valid_long_graphs_of_the_runs_families_up_to_n(topped_up):
    data, base, arrays = topped_up
    top = arrays["stratum"] == TOP_UP
    assert arrays["stratum"].dtype == np.int32 and set(np.unique(arrays["stratum"])) == {BASE, TOP_UP}
    assert (arrays["stratum"][: len(base["s"])] == BASE).all() and top[len(base["s"]) :].all()
    assert (arrays["num_nodes"][top] <= data.n_max).all()
    assert set(arrays["family_names"][arrays["family"][top]]) <= set(data.family_list())
    lacking = min(d for d in range(1, 5) if path_queries(base, data.n_max)[d] < WANTED)
    assert (arrays["d_st"][top] >= lacking).all()  # only graphs long enough to fill a distance that lacks
    for ex in rows({k: v[top] if k != "family_names" else v for k, v in arrays.items()}):
        check_example({k: v for k, v in ex.items() if k != "stratum"}, vocab=data.vocab)


def test_the_base_stratum_is_byte_identical_to_generate_alone(topped_up):
    _, base, arrays = topped_up
    count = len(base["s"])
    assert set(arrays) == set(CONTRACT) | {"stratum"}
    for name, array in base.items():
        got = arrays[name] if name == "family_names" else arrays[name][:count]
        cut = got[:, : array.shape[1]] if array.ndim > 1 else got
        assert cut.dtype == array.dtype and cut.tobytes() == array.tobytes(), name
        if array.ndim > 1:  # the top-up's longer rows widen the arrays: the base's rows are padded with zeros
            assert not got[:, array.shape[1] :].any(), name


def test_the_same_config_gives_the_same_bytes(topped_up, tmp_path, monkeypatch):
    data, _, arrays = topped_up
    save(first := tmp_path / "a.npz", arrays)
    save(again := tmp_path / "b.npz", make_eval_set(data))
    assert first.read_bytes() == again.read_bytes()
    # Drawn 64 candidates per family at a time instead of 512: the same graphs chosen.
    monkeypatch.setattr(dataset, "TOP_UP_ROWS", 64)
    assert content_hash(make_eval_set(data)) == content_hash(arrays)
    assert content_hash(make_eval_set(tiny_data(eval_per_distance=WANTED, eval_seed=5))) != content_hash(arrays)


def test_without_a_shortfall_there_is_no_top_up():
    data = tiny_data(eval_per_distance=1)
    arrays = make_eval_set(data)
    assert (arrays["stratum"] == BASE).all()


def test_choose_from_the_longest_distance_down_by_hand():
    # Counts at d = 0..3 and five candidates of d(s,t) 3, 1, 2, 3, 5 in the order drawn.
    have, d_st = np.array([10, 9, 8, 7]), np.array([3, 1, 2, 3, 5])
    # 9 wanted: d = 3 lacks 2, the first two with d(s,t) >= 3 (0 and 3) bring every count up by 2; nothing lacks.
    chosen, short, count = choose(d_st, have, 9)
    assert chosen.tolist() == [True, False, False, True, False] and short is None
    assert count.tolist() == [12, 11, 10, 9]
    # 10 wanted: d = 3 lacks 3 (0, 3, 4), then d = 2 lacks none (8 + 3 = 11), d = 1 none.
    chosen, short, _ = choose(d_st, have, 10)
    assert chosen.tolist() == [True, False, False, True, True] and short is None
    # 12 wanted: d = 3 lacks 5, three candidates reach it: d = 3 is named.
    chosen, short, count = choose(d_st, have, 12)
    assert short == 3 and chosen.sum() == 3 and count.tolist() == [13, 12, 11, 10]


def test_a_distance_that_cannot_be_filled_is_a_one_line_error(monkeypatch):
    data = tiny_data(eval_per_distance=10**6)
    base = generate(data.eval_seed, data.family_list(), data.eval_sizes(), 96, data.vocab)
    with pytest.raises(TopUpError) as error:
        with_top_up(base, 0, data.family_list(), (3, 6), 4, 10**6, data.vocab, max_candidates=1024)
    message = str(error.value)
    assert "d(s,u) = 4" in message and "1024 candidate graphs" in message and "\n" not in message
    monkeypatch.setattr(dataset, "MAX_CANDIDATES", 1024)  # the run's evaluation set: a RunError naming the knob
    with pytest.raises(RunError, match=r"d\(s,u\) = 4 .*lower data.eval_per_distance$"):
        make_eval_set(data)


def test_the_stratum_is_optional_and_checked_on_load(topped_up, tmp_path):
    _, base, arrays = topped_up
    save(with_strata := tmp_path / "strata.npz", arrays)
    assert (load(with_strata)["stratum"] == arrays["stratum"]).all()
    save(plain := tmp_path / "plain.npz", base)
    assert "stratum" not in load(plain)
    for broken, message in (
        (arrays["stratum"] + 2, "'stratum' holds values other than 0 (base) and 1 (top-up)"),
        (arrays["stratum"][1:], "'stratum' has"),
        (arrays["stratum"].astype(float), "array 'stratum' is float64"),
    ):
        save(bad := tmp_path / "bad.npz", arrays | {"stratum": broken})
        with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load(bad)

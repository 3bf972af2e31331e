import subprocess
import sys

import numpy as np
import pytest
from graph_checks import check_example, rows

from graphgen import dataset
from graphgen.dataset import CONTRACT, DatasetError, content_hash, generate, load, save


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphgen", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "set.npz"
    args = ["export", "--family", "tree_plus,small_world", "--sizes", "3:10", "--count", "48", "--seed", "7"]
    result = run_cli(*args, "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out, args


def test_export_writes_exactly_the_data_contract(exported):
    path, _ = exported
    arrays = load(path)
    assert set(arrays) == set(CONTRACT)
    assert list(arrays["family_names"][np.unique(arrays["family"])]) == ["tree_plus", "small_world"]
    assert sorted(set(arrays["num_nodes"])) == list(range(3, 11))
    for ex in rows(arrays):
        check_example(ex, vocab=10)


def test_export_is_byte_identical_for_same_arguments(exported, tmp_path):
    path, args = exported
    again, other = tmp_path / "again.npz", tmp_path / "other.npz"
    assert run_cli(*args, "--out", str(again)).returncode == 0
    assert again.read_bytes() == path.read_bytes()
    other_seed = [a if a != "7" else "8" for a in args]
    assert run_cli(*other_seed, "--out", str(other)).returncode == 0
    assert content_hash(load(other)) != content_hash(load(path))


def test_families_lists_every_family():
    result = run_cli("families")
    assert result.returncode == 0
    assert result.stdout.split() == ["erdos_renyi", "tree_plus", "grid_holes", "geometric", "small_world"]


def test_save_is_atomic_and_keeps_the_old_file_on_failure(exported, tmp_path):
    target = tmp_path / "keep.npz"
    arrays = load(exported[0])
    save(target, arrays)
    before = target.read_bytes()
    with pytest.raises(ValueError):
        save(target, {**arrays, "bad": np.array([object()])})  # object arrays are refused, never pickled
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.npz"]


def test_corrupt_files_are_rejected_with_one_line(exported, tmp_path):
    arrays = load(exported[0])
    data = exported[0].read_bytes()
    cases = {
        "garbage.npz": b"not a zip file at all",
        "truncated.npz": data[: len(data) // 2],
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    np.savez(tmp_path / "pickled.npz", **{**arrays, "s": np.array([object()] * len(arrays["s"]))})
    np.savez(tmp_path / "missing.npz", **{k: v for k, v in arrays.items() if k != "path"})
    np.savez(tmp_path / "wrongtype.npz", **{**arrays, "d_st": arrays["d_st"].astype(np.float32)})
    np.savez(tmp_path / "inconsistent.npz", **{**arrays, "path_len": arrays["path_len"] + 1})
    for name in ["garbage.npz", "truncated.npz", "pickled.npz", "missing.npz", "wrongtype.npz", "inconsistent.npz"]:
        with pytest.raises(DatasetError) as error:
            load(tmp_path / name)
        assert "\n" not in str(error.value) and name in str(error.value)
    with pytest.raises(DatasetError, match="no such file"):
        load(tmp_path / "absent.npz")


@pytest.mark.slow
def test_generation_in_chunks_gives_the_same_examples(monkeypatch):
    """Each example comes from its own key, fold_in(seed, row): cutting the rows into generator calls of 64
    (a cell of 150 rows: three calls, the last padded) changes no byte."""
    whole = generate(5, ["tree_plus", "small_world"], (4, 9), 300, 12)
    monkeypatch.setattr(dataset, "CHUNK", 64)
    assert content_hash(generate(5, ["tree_plus", "small_world"], (4, 9), 300, 12)) == content_hash(whole)

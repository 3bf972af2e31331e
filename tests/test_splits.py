"""Splits: which queries a reporter is trained on and which its consistency losses see, over many drawn batches
(the issue's contract: a family split never labels the held-out family, a distance:K split never a distance
above K), the oracle's queries under each split, the split grammar, and the columns sweep's grid."""

import jax
import numpy as np
import pytest

from configs import PRESETS, Config, DataConfig, config_changes
from configs.sweeps import columns_sweep
from experiment.phases import finetune_sampler
from graphgen.sample import family_names
from graphgen.splits import Split, parse_split
from models.objectives import ceilings, labelled_queries, path_queries, variant

CFG = PRESETS["tiny"].replace(data={"families": "tree_plus,small_world,grid_holes"})
KEYS = jax.random.split(jax.random.key(0), 12)  # 12 batches of 64


def family_ids(names: list[str]) -> set[int]:
    return {family_names().index(name) for name in names}


def draws(spec: str, part: str):
    sample = finetune_sampler(CFG, variant(spec))
    draw = jax.jit(lambda key: sample(key, 64)[part])  # one program, not op by op
    return sample, [draw(key) for key in KEYS]


@pytest.mark.parametrize(
    ("spec", "labelled"),
    [
        ("frozen~family:grid_holes", ["tree_plus", "small_world"]),
        ("frozen~family:grid_holes:small_world", ["small_world"]),
        ("frozen@range~family:tree_plus", ["small_world", "grid_holes"]),
    ],
)
def test_a_family_split_never_labels_the_held_out_family(spec, labelled):
    sample, batches = draws(spec, "labelled")
    seen = set().union(*(np.asarray(b.family).tolist() for b in batches))
    assert seen == family_ids(labelled)  # never the held-out family, every labelled one
    sizes = set().union(*(np.asarray(b.num_nodes).tolist() for b in batches))
    assert sizes == set(range(CFG.data.n_min, CFG.data.n_max + 1))  # every size <= N, not only <= n
    if variant(spec).consistency:  # consistency losses see the held-out family's questions only
        assert sample.unlabelled.families == (variant(spec).split.held_out,)


def test_a_distance_split_never_labels_a_distance_above_k():
    reporter = variant("frozen~distance:2")
    _, batches = draws("frozen~distance:2", "labelled")
    labels = np.concatenate(
        [np.asarray(labelled_queries(b, reporter)[1])[np.asarray(labelled_queries(b, reporter)[2])] for b in batches]
    )
    assert labels.max() == 2 and set(labels.tolist()) == {0, 1, 2}
    longer = sum(int((np.asarray(b.path_len) > 3).sum()) for b in batches)
    assert longer > 100  # the graphs do have longer paths: the mask, not the data, keeps them out
    # Its oracle, and the size split's reporter, label the whole path.
    b = batches[0]
    for spec in ("oracle~distance:2", "frozen"):
        assert (np.asarray(labelled_queries(b, variant(spec))[2]) == np.asarray(path_queries(b)[2])).all()


def test_the_offpath_oracle_labels_every_vertex_by_bfs_and_the_reporter_the_path_only():
    _, batches = draws("oracle~offpath", "labelled")
    b = batches[0]
    u, labels, valid = (np.asarray(x) for x in labelled_queries(b, variant("oracle~offpath")))
    assert (valid == (np.asarray(b.node_ids) > 0)).all()
    assert (labels[valid] == np.asarray(b.dist_s)[valid]).all()
    assert valid.sum() > np.asarray(b.path_len).sum()  # more than the path
    path = [np.asarray(x) for x in labelled_queries(b, variant("frozen~offpath"))]
    assert (path[2] == np.asarray(path_queries(b)[2])).all()


def test_offpath_and_distance_label_every_size_and_size_labels_up_to_n():
    for spec, sizes in [("frozen~offpath", (3, 6)), ("frozen~distance:3", (3, 6)), ("frozen", (3, 4))]:
        _, batches = draws(spec, "labelled")
        seen = set().union(*(np.asarray(b.num_nodes).tolist() for b in batches))
        assert seen == set(range(sizes[0], sizes[1] + 1)), spec
    sample = finetune_sampler(CFG, variant("frozen@range~distance:3"))
    assert (sample.unlabelled.n_min, sample.unlabelled.families) == (3, ("tree_plus", "small_world", "grid_holes"))


def test_split_grammar_round_trips_and_names_what_is_wrong():
    for text in ("size", "offpath", "distance:3", "family:grid_holes", "family:grid_holes:tree_plus+small_world"):
        assert str(parse_split(text)) == text
    split = parse_split("family:grid_holes:tree_plus")
    assert split == Split("family", "grid_holes", ("tree_plus",))
    assert split.labelled_families(["a", "grid_holes", "tree_plus"]) == ["tree_plus"]
    assert parse_split("family:a").labelled_families(["a", "b", "c"]) == ["b", "c"]
    assert parse_split("distance:4").max_distance == 4
    for bad, message in [
        ("sizes", "unknown split"),
        ("distance:x", "whole number"),
        ("family:", "needs the held-out family"),
        ("family:a:a", "cannot be labelled too"),
        ("size:3", "takes no argument"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_split(bad)
    with pytest.raises(ValueError, match="leaves no labelled family"):
        parse_split("family:a", ["a"])


def test_variants_name_their_split_and_share_the_oracle_but_offpath():
    assert variant("frozen:shared@range~distance:2").split == Split("distance", max_distance=2)
    assert variant("frozen").split is None  # the run's data.split
    names = ["frozen~family:a", "frozen~offpath", "oracle", "oracle~offpath", "frozen~distance:2", "probe"]
    assert ceilings(names) == {
        "frozen~family:a": "oracle",
        "frozen~distance:2": "oracle",
        "oracle": "oracle",
        "frozen~offpath": "oracle~offpath",  # labels off the path: the ceiling there
        "oracle~offpath": "oracle~offpath",
    }


def test_columns_sweep_holds_out_each_family_with_nested_seeded_columns():
    families = ["a", "b", "c", "d"]
    data = DataConfig(families=",".join(families))
    cells = columns_sweep(data)
    assert cells == columns_sweep(data) and cells[-1] == "oracle"
    splits = [variant(c).split for c in cells[:-1]]
    assert [(s.held_out, len(s.labelled)) for s in splits] == [(f, k) for f in families for k in (1, 2, 3)]
    for s in splits:
        assert s.held_out not in s.labelled
    for fold in range(4):  # each k adds a column to k - 1's
        a, b, c = splits[3 * fold : 3 * fold + 3]
        assert b.labelled[:1] == a.labelled and c.labelled[:2] == b.labelled
    assert len({s.labelled for s in splits if len(s.labelled) == 1}) > 1  # not the same first column every fold


def test_a_config_written_before_a_field_existed_counts_it_as_its_default():
    old = PRESETS["quick"].to_dict()
    del old["data"]["split"]
    assert config_changes(old, PRESETS["quick"].to_dict()) == []
    assert config_changes(old, PRESETS["quick"].replace(data={"split": "offpath"}).to_dict()) == ["data.split"]


def test_a_config_written_before_the_pools_and_the_top_up_stands_for_neither():
    """data.finetune_pool and data.eval_per_distance default on, but a run recorded before them had neither: its
    config reads back as pool 1 and no top-up, and differs from the preset's there."""
    old = PRESETS["quick"].to_dict()
    del old["data"]["finetune_pool"], old["data"]["eval_per_distance"]
    data = Config.from_dict(old).data
    assert (data.finetune_pool, data.eval_per_distance) == (1, 0)
    assert (PRESETS["quick"].data.finetune_pool, PRESETS["quick"].data.eval_per_distance) == (8, 100)
    assert config_changes(old, PRESETS["quick"].to_dict()) == ["data.eval_per_distance", "data.finetune_pool"]
    assert config_changes(PRESETS["quick"].to_dict(), PRESETS["quick"].to_dict()) == []

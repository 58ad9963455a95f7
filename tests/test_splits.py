import pytest

from autoagent.splits import split

FRACTIONS = {"held_out": [], "test": [], "held_out_fraction": 0.2, "test_fraction": 0.2}


def test_the_same_seed_gives_the_same_split_and_another_seed_another():
    names = [f"task-{i:02}" for i in range(20)]
    first = split(names, seed=7, **FRACTIONS)
    assert split(list(reversed(names)), seed=7, **FRACTIONS) == first
    assert (len(first.test), len(first.held_out), len(first.search)) == (4, 4, 12)
    assert split(names, seed=8, **FRACTIONS) != first


def test_a_task_added_later_does_not_reshuffle_the_split():
    names = [f"task-{i:02}" for i in range(20)]
    before = split(names, seed=7, **FRACTIONS)
    after = split([*names, "a-new-task"], seed=7, **FRACTIONS)
    # At most the task at each boundary moves one split along; a sealed task never becomes visible.
    assert len(set(before.test) - set(after.test)) <= 1
    assert not set(before.test) & set(after.search)
    assert len(set(before.search) - set(after.search)) <= 1


def test_explicit_lists_are_checked():
    with pytest.raises(ValueError, match="do not exist: nope"):
        split(["a", "b"], held_out=["nope"], test=[], held_out_fraction=0, test_fraction=0, seed=0)
    with pytest.raises(ValueError, match="both held_out and test: a"):
        split(["a", "b"], held_out=["a"], test=["a"], held_out_fraction=0, test_fraction=0, seed=0)
    with pytest.raises(ValueError, match="no tasks for the meta-agent"):
        split(["a", "b"], held_out=["a"], test=["b"], held_out_fraction=0, test_fraction=0, seed=0)

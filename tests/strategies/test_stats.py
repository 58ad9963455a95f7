import pytest

from autoagent.strategies.stats import compare, noise_floor


def test_exact_permutation_p_values():
    one = compare({"a": [1.0, 0.0]}, {"a": [1.0, 1.0]}, ["a"])
    assert one.gain == 0.5 and one.p_better == pytest.approx(0.5)
    two = compare({"a": [1.0, 1.0], "b": [1.0, 1.0]}, {"a": [0.0, 0.0], "b": [0.0, 0.0]}, ["a", "b"])
    assert two.gain == -2.0 and two.p_worse == pytest.approx((1 / 6) ** 2)
    fixed = compare({"a": [0.0, 0.0]}, {"a": [1.0, 1.0, 1.0]}, ["a"])
    assert fixed.p_better == pytest.approx(1 / 10)  # 3 of 5 pooled passes all on the candidate's side


def test_tasks_that_agree_do_not_move_the_test():
    same = compare({"a": [1.0], "b": [0.0]}, {"a": [1.0], "b": [0.0]}, ["a", "b"])
    assert (same.gain, same.p_better, same.p_worse) == (0.0, 1.0, 1.0)


def test_noise_floor_is_zero_for_deterministic_tasks():
    assert noise_floor({"a": [1.0, 1.0], "b": [0.0, 0.0]}, ["a", "b"]) == 0.0
    assert noise_floor({"a": [1.0, 0.0]}, ["a"]) == pytest.approx(0.5)

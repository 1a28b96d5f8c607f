import pytest

from gps_ros.core.step_size import StepSizeConfig, new_step_multiplier, new_step_multiplier_global

CFG = StepSizeConfig(min_mult=0.1, max_mult=10.0)


def test_half_the_predicted_improvement_keeps_the_step():
    # predicted improvement 10 − 6 = 4, actual 10 − 8 = 2: 4 / (2 · (4 − 2)) = 1
    assert new_step_multiplier(2.0, 10.0, 6.0, 8.0, CFG) == pytest.approx(2.0)


def test_no_actual_improvement_halves_the_step():
    # 4 / (2 · (4 − 0)) = 0.5
    assert new_step_multiplier(1.0, 10.0, 6.0, 10.0, CFG) == pytest.approx(0.5)


def test_worse_than_before_shrinks_more():
    # actual improvement −4: 4 / (2 · 8) = 0.25
    assert new_step_multiplier(1.0, 10.0, 6.0, 14.0, CFG) == pytest.approx(0.25)


def test_better_than_predicted_hits_max_without_dividing_by_zero():
    assert new_step_multiplier(1.0, 10.0, 6.0, 6.0, CFG) == 10.0
    assert new_step_multiplier(1.0, 10.0, 6.0, 5.0, CFG) == 10.0


def test_clipped_to_range_and_no_predicted_improvement():
    assert new_step_multiplier(8.0, 10.0, 6.0, 7.0, CFG) == 10.0  # 8 · 4 / 2 = 16
    assert new_step_multiplier(0.15, 10.0, 6.0, 30.0, CFG) == 0.1  # 0.15 · 4 / 48
    assert new_step_multiplier(1.0, 10.0, 10.0, 9.0, CFG) == 0.1
    assert new_step_multiplier(1.0, 10.0, 12.0, 9.0, CFG) == 0.1


def test_global_rule_uses_the_new_global_cost():
    # previous global cost 20, new local predicted 12, new global policy cost 16: 8 / (2 · 4) = 1
    assert new_step_multiplier_global(3.0, 20.0, 12.0, 16.0, CFG) == pytest.approx(3.0)
    assert new_step_multiplier_global(3.0, 20.0, 12.0, 20.0, CFG) == pytest.approx(1.5)


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="actual_cost: expected a finite number, got nan"):
        new_step_multiplier(1.0, 1.0, 0.5, float("nan"), CFG)
    with pytest.raises(ValueError, match="multiplier: expected a positive number, got -1"):
        new_step_multiplier(-1.0, 1.0, 0.5, 0.7, CFG)
    with pytest.raises(ValueError, match="min_mult, max_mult"):
        StepSizeConfig(min_mult=2.0, max_mult=1.0)

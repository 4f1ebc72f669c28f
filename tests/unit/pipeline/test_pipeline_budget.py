"""Thread budget: cores shared out after each consumer's floor; with few cores the model spans them."""

from __future__ import annotations

import pytest

from posestream.pipeline.budget import plan_threads

WEIGHTS = {"pose": 3.0, "detector": 1.0}


@pytest.mark.parametrize("cores", [5, 6, 8, 12, 16, 64])
def test_auto_budget_uses_exactly_the_cores_with_pose_first(cores):
    budget = plan_threads(cores, {"decode": 0, "detector": 0, "pose": 0, "encode": 0}, WEIGHTS)
    assert budget.total == cores
    assert budget["decode"] == budget["encode"] == 1
    assert budget["pose"] >= budget["detector"] >= 1


def test_fewer_cores_than_consumers_gives_the_light_ones_one_and_the_model_every_core():
    budget = plan_threads(2, {"decode": 0, "detector": 0, "pose": 0, "encode": 0}, WEIGHTS)
    assert dict(budget.threads) == {"decode": 1, "detector": 1, "pose": 2, "encode": 1}
    assert budget.describe() == "5 threads on 2 cores (decode 1, detector 1, pose 2, encode 1)"
    assert plan_threads(4, {"decode": 0, "detector": 0, "pose": 0, "encode": 0}, WEIGHTS)["pose"] == 4


def test_with_few_cores_the_model_spans_those_the_user_did_not_fix():
    assert plan_threads(3, {"decode": 2, "detector": 0, "pose": 0, "encode": 0}, WEIGHTS)["pose"] == 1
    assert plan_threads(2, {"decode": 0, "pose": 1, "encode": 0}, WEIGHTS)["pose"] == 1  # given: kept
    workers = plan_threads(2, {"decode": 0, "pose.0": 0, "pose.1": 0}, {"pose.0": 1.5, "pose.1": 1.5})
    assert (workers["pose.0"], workers["pose.1"]) == (1, 1)  # equal workers already span the cores


def test_given_counts_are_kept_and_the_rest_shares_what_is_left():
    budget = plan_threads(8, {"decode": 2, "detector": 0, "pose": 0, "encode": 0}, WEIGHTS)
    assert (budget["decode"], budget["encode"]) == (2, 1)
    assert (budget["pose"], budget["detector"]) == (3, 2)  # 3 spare cores split 3:1, largest remainder


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="cores"):
        plan_threads(0, {"pose": 0}, WEIGHTS)
    with pytest.raises(ValueError, match="threads for pose"):
        plan_threads(4, {"pose": -1}, WEIGHTS)

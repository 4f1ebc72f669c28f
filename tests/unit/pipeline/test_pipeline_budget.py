"""The CPU thread budget: never more threads than cores once each consumer has its floor."""

from __future__ import annotations

import pytest

from posestream.pipeline.budget import plan_threads

WEIGHTS = {"pose": 3.0, "detector": 1.0}


@pytest.mark.parametrize("cores", [4, 5, 6, 8, 12, 16, 64])
def test_auto_budget_uses_exactly_the_cores_with_pose_first(cores):
    budget = plan_threads(cores, {"decode": 0, "detector": 0, "pose": 0, "encode": 0}, WEIGHTS)
    assert budget.total == cores
    assert budget["decode"] == budget["encode"] == 1
    assert budget["pose"] >= budget["detector"] >= 1


def test_fewer_cores_than_consumers_gives_each_its_floor_of_one():
    budget = plan_threads(2, {"decode": 0, "detector": 0, "pose": 0, "encode": 0}, WEIGHTS)
    assert dict(budget.threads) == {"decode": 1, "detector": 1, "pose": 1, "encode": 1}
    assert budget.describe() == "4 threads on 2 cores (decode 1, detector 1, pose 1, encode 1)"


def test_given_counts_are_kept_and_the_rest_shares_what_is_left():
    budget = plan_threads(8, {"decode": 2, "detector": 0, "pose": 0, "encode": 0}, WEIGHTS)
    assert (budget["decode"], budget["encode"]) == (2, 1)
    assert (budget["pose"], budget["detector"]) == (3, 2)  # 3 spare cores split 3:1, largest remainder


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="cores"):
        plan_threads(0, {"pose": 0}, WEIGHTS)
    with pytest.raises(ValueError, match="threads for pose"):
        plan_threads(4, {"pose": -1}, WEIGHTS)

"""Quota math is pure; enforcement is atomic (checked against concurrency in integration)."""

from dockyard.compute.quotas import Over, exceeded_message, headroom, overs


def test_overs_and_unlimited():
    limits = {"instances": 10, "cores": 20, "ram": -1}
    used = {"instances": 9, "cores": 18, "ram": 10**6}
    assert overs(limits, used, {"instances": 1, "cores": 2, "ram": 4096}) == []
    found = overs(limits, used, {"instances": 2, "cores": 4, "ram": 4096})
    assert found == [Over("instances", 10, 9, 2), Over("cores", 20, 18, 4)]
    assert exceeded_message(found) == (
        "Quota exceeded for instances (requested 2, used 9 of 10), "
        "cores (requested 4, used 18 of 20)."
    )


def test_headroom_is_the_tightest_resource():
    limits = {"instances": 10, "cores": 20, "ram": 51200}
    used = {"instances": 2, "cores": 4, "ram": 8192}
    per = {"instances": 1, "cores": 4, "ram": 2048}
    assert headroom(limits, used, per) == 4  # cores: (20 - 4) // 4
    assert headroom({"instances": -1}, {}, {"instances": 1}) >= 10**9
    assert headroom(limits, {"instances": 12}, per) == 0  # over already: never negative

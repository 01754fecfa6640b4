"""Healthcheck rules as docker applies them (no root, no box): streaks, retries, the
start period, status transitions, the five-result log, and Config.Healthcheck checks."""

from __future__ import annotations

from typing import Any

import pytest

from sdcontainer.engine.health import SECOND, argv_of, fold, merge, normalize
from sdcontainer.errors import InvalidArgument

HC = {"Test": ["CMD", "true"], "Interval": 30 * SECOND, "Timeout": 30 * SECOND,
      "Retries": 3, "StartPeriod": 0}


def result(code: int, n: int = 0) -> dict[str, Any]:
    return {"Start": f"s{n}", "End": f"e{n}", "ExitCode": code, "Output": f"run {n}"}


def run(codes: list[int], hc: dict[str, Any] = HC, running_for: float = 100.0,
        health: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The health after each probe of CODES in turn."""
    seen = []
    for n, code in enumerate(codes):
        health = fold(health, hc, result(code, n), running_for)
        seen.append(health)
    return seen


def test_first_pass_is_healthy() -> None:
    h = run([0])[-1]
    assert h["Status"] == "healthy" and h["FailingStreak"] == 0
    assert h["Log"] == [result(0, 0)]


def test_unhealthy_after_retries_failures_in_a_row() -> None:
    statuses = [(h["Status"], h["FailingStreak"]) for h in run([1, 1, 1, 1])]
    assert statuses == [("starting", 1), ("starting", 2), ("unhealthy", 3), ("unhealthy", 4)]


def test_a_pass_ends_the_streak() -> None:
    hs = run([0, 1, 1, 0, 1, 1])
    assert [(h["Status"], h["FailingStreak"]) for h in hs] == [
        ("healthy", 0), ("healthy", 1), ("healthy", 2), ("healthy", 0), ("healthy", 1),
        ("healthy", 2)]


def test_unhealthy_recovers_on_one_pass() -> None:
    h = run([1, 1, 1, 0])[-1]
    assert (h["Status"], h["FailingStreak"]) == ("healthy", 0)


def test_retries_one() -> None:
    h = run([1], {**HC, "Retries": 1})[-1]
    assert h["Status"] == "unhealthy"


def test_failures_in_the_start_period_do_not_count() -> None:
    hc = {**HC, "StartPeriod": 60 * SECOND}
    hs = run([1, 1, 1, 1], hc, running_for=5.0)
    assert all(h["Status"] == "starting" and h["FailingStreak"] == 0 for h in hs)
    assert len(hs[-1]["Log"]) == 4  # recorded all the same


def test_failures_count_once_the_start_period_is_over() -> None:
    hc = {**HC, "StartPeriod": 60 * SECOND}
    assert run([1, 1, 1], hc, running_for=60.0)[-1]["Status"] == "unhealthy"


def test_the_start_period_ends_with_the_first_pass() -> None:
    # Once healthy, the container is out of its start period whatever its age.
    hc = {**HC, "StartPeriod": 60 * SECOND, "Retries": 1}
    h = run([0, 1], hc, running_for=1.0)[-1]
    assert (h["Status"], h["FailingStreak"]) == ("unhealthy", 1)


def test_log_keeps_the_last_five() -> None:
    h = run([0, 1, 0, 1, 0, 1, 0])[-1]
    assert [r["Output"] for r in h["Log"]] == [f"run {n}" for n in range(2, 7)]


def test_fold_does_not_change_its_input() -> None:
    before = {"Status": "healthy", "FailingStreak": 0, "Log": [result(0)]}
    copy = {**before, "Log": list(before["Log"])}
    fold(before, HC, result(1, 1), 100.0)
    assert before == copy


def test_no_health_yet_starts_as_starting() -> None:
    h = fold(None, HC, result(1), 100.0)
    assert (h["Status"], h["FailingStreak"]) == ("starting", 1)


# -- Config.Healthcheck ------------------------------------------------------------------

def test_normalize_fills_defaults() -> None:
    assert normalize({"Test": ["CMD-SHELL", "true"]}) == {
        "Test": ["CMD-SHELL", "true"], "Interval": 30 * SECOND, "Timeout": 30 * SECOND,
        "Retries": 3, "StartPeriod": 0}


@pytest.mark.parametrize("hc", [None, {}, {"Test": []}, {"Test": ["NONE"]}])
def test_normalize_no_check(hc: Any) -> None:
    assert normalize(hc) == {}


@pytest.mark.parametrize("hc", [
    "x", {"Test": "true"}, {"Test": ["SHELL", "true"]}, {"Test": ["CMD"]},
    {"Test": ["CMD", 1]}, {"Test": ["CMD", "x"], "Interval": -1},
    {"Test": ["CMD", "x"], "Interval": 999_999}, {"Test": ["CMD", "x"], "Retries": "3"},
    {"Test": ["CMD", "x"], "Timeout": 1.5},
])
def test_normalize_refuses(hc: Any) -> None:
    with pytest.raises(InvalidArgument):
        normalize(hc)


def test_merge_request_over_image() -> None:
    image = {"Test": ["CMD", "img"], "Interval": 5 * SECOND, "Retries": 7}
    merged = merge(image, {"Test": ["CMD", "req"], "Interval": 0})
    assert merged["Test"] == ["CMD", "req"] and merged["Interval"] == 5 * SECOND
    assert merged["Retries"] == 7
    assert merge(image, {"Test": ["NONE"]}) == {}
    assert merge(None, None) == {}


def test_argv_of() -> None:
    assert argv_of(["CMD", "a", "b c"]) == ["a", "b c"]
    assert argv_of(["CMD-SHELL", "a && b"]) == ["/bin/sh", "-c", "a && b"]

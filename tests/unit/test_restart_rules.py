"""Restart policies and back-off, docker's rules, as pure decisions (no root, no box).

The box tier (tests/systemd/test_restart.py) checks the same rules on real containers;
here every corner is checked in milliseconds."""

from __future__ import annotations

import dataclasses

import pytest

from sdcontainer.engine import restart
from sdcontainer.engine.restart import Policy, next_delay, should_restart
from sdcontainer.errors import InvalidArgument
from sdcontainer.model.spec import RestartPolicy


@pytest.mark.parametrize("text, policy", [
    ("no", Policy("no", 0)), ("always", Policy("always", 0)),
    ("unless-stopped", Policy("unless-stopped", 0)), ("on-failure", Policy("on-failure", 0)),
    ("on-failure:0", Policy("on-failure", 0)), ("on-failure:5", Policy("on-failure", 5)),
])
def test_parse(text: str, policy: Policy) -> None:
    assert restart.parse(text) == policy


@pytest.mark.parametrize("text", ["", "sometimes", "always:3", "unless-stopped:1", "no:1",
                                  "on-failure:x", "on-failure:-1", "On-Failure", "on-failure:"
                                  "1.5"])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(InvalidArgument):
        restart.parse(text)


def test_json_round_trip() -> None:
    for p in (Policy(), Policy("always"), Policy("on-failure", 3), Policy("unless-stopped")):
        assert restart.from_json(p.to_docker()) == p
        assert restart.from_json(p) == p
        # The record's JSON form loads back, and so does docker's (older records).
        assert RestartPolicy.load(dataclasses.asdict(p)) == p
        assert RestartPolicy.load(p.to_docker()) == p
    assert Policy().to_docker() == {"Name": "", "MaximumRetryCount": 0}
    assert restart.from_json(None) == Policy()
    assert restart.from_json({}) == Policy()


@pytest.mark.parametrize("data", [["always"], "always", {"Name": "sometimes"}, {"Name": 1},
                                  {"Name": "on-failure", "MaximumRetryCount": -1},
                                  {"Name": "on-failure", "MaximumRetryCount": "3"},
                                  {"Name": "always", "MaximumRetryCount": 2}])
def test_from_json_refuses(data: object) -> None:
    with pytest.raises(InvalidArgument):
        restart.from_json(data)


# -- should_restart: docker's RestartManager.ShouldRestart ------------------------------

@pytest.mark.parametrize("name", ["no", "always", "unless-stopped", "on-failure"])
def test_explicit_stop_always_wins(name: str) -> None:
    for code in (0, 1, 137):
        assert not should_restart(Policy(name), code, True, 0)


def test_no_never_restarts() -> None:
    for code in (0, 1, 137):
        assert not should_restart(Policy("no"), code, False, 0)


@pytest.mark.parametrize("name", ["always", "unless-stopped"])
def test_always_restarts_on_success_and_failure(name: str) -> None:
    for code in (0, 1, 143):
        assert should_restart(Policy(name), code, False, 1000)


def test_on_failure_only_on_failure() -> None:
    assert not should_restart(Policy("on-failure"), 0, False, 0)
    assert should_restart(Policy("on-failure"), 1, False, 0)
    assert should_restart(Policy("on-failure"), 137, False, 0)
    assert should_restart(Policy("on-failure"), -1, False, 0)


def test_on_failure_without_limit_restarts_forever() -> None:
    assert should_restart(Policy("on-failure", 0), 1, False, 10**6)


def test_on_failure_n_allows_exactly_n_restarts() -> None:
    p = Policy("on-failure", 3)
    assert [should_restart(p, 1, False, n) for n in range(5)] == [True, True, True, False,
                                                                  False]


# -- next_delay: 100 ms, doubling, capped at a minute, reset after 10 s of running -------

def test_first_delay_is_100ms() -> None:
    assert next_delay(0.0, 0.0) == 0.1


def test_delay_doubles_up_to_a_minute() -> None:
    delays, d = [], 0.0
    for _ in range(14):
        d = next_delay(d, 0.5)
        delays.append(d)
    assert delays[:6] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2])
    assert delays[-1] == 60.0 and max(delays) == 60.0
    assert delays == sorted(delays)
    assert sum(1 for x in delays if x == 60.0) >= 3  # stays at the cap


def test_a_long_run_resets_the_back_off() -> None:
    assert next_delay(60.0, 10.0) == 0.1
    assert next_delay(60.0, 3600.0) == 0.1
    assert next_delay(0.8, 9.99) == 1.6


def test_constants_are_dockers() -> None:
    assert (restart.FIRST_DELAY, restart.MAX_DELAY, restart.RESET_AFTER) == (0.1, 60.0, 10.0)

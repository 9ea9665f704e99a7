"""Restart decisions: backoff doubling inside the window, give up past max_restarts."""

from monoimage.init.policy import DONE, FAILED, RESTART, after_exit
from monoimage.init.table import Restart

ALWAYS = Restart("always", 0.5, 3.0, 4, 60.0)


def test_backoff_doubles_up_to_its_cap_then_gives_up():
    exits: tuple[float, ...] = ()
    delays = []
    for now in (0.0, 1.0, 2.0, 3.0):
        decision = after_exit(ALWAYS, True, exits, now)
        assert decision.action == RESTART
        delays.append(decision.delay)
        exits = decision.recent_exits
    assert delays == [0.5, 1.0, 2.0, 3.0]
    final = after_exit(ALWAYS, True, exits, 4.0)
    assert final.action == FAILED
    assert final.reason == "exited 5 times within 60 s (max_restarts 4)"


def test_exits_older_than_the_window_are_forgotten():
    decision = after_exit(ALWAYS, True, (0.0, 1.0, 2.0, 3.0), 100.0)
    assert (decision.action, decision.delay, decision.recent_exits) == (RESTART, 0.5, (100.0,))


def test_policies_never_and_on_failure():
    never = Restart("never", 0.5, 3.0, 4, 60.0)
    on_failure = Restart("on-failure", 0.5, 3.0, 4, 60.0)
    assert after_exit(never, False, (), 0.0).action == DONE
    assert after_exit(never, True, (), 0.0).action == FAILED
    assert after_exit(on_failure, False, (), 0.0).action == DONE
    assert after_exit(on_failure, True, (), 0.0).action == RESTART
    assert after_exit(ALWAYS, False, (), 0.0).action == RESTART
    assert after_exit(Restart("always", 0.5, 3.0, 0, 60.0), True, (), 0.0).action == FAILED

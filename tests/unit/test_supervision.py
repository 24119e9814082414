"""The supervisor's restart budget and the reading of Kamailio's dialog list (pure parts)."""

from __future__ import annotations

from tawasol.adapters.sip.dialogs import parse_dialog_list
from tawasol.runtime.processes import RestartBudget


def test_given_a_child_dying_again_and_again_then_delays_double_up_to_30_s_then_give_up() -> None:
    budget = RestartBudget(max_restarts=8, window_s=600, first_delay_s=0.5)

    delays = [budget.next_delay(float(second)) for second in range(9)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, None]


def test_given_restarts_older_than_the_window_then_they_no_longer_count() -> None:
    budget = RestartBudget(max_restarts=2, window_s=60, first_delay_s=1)
    assert budget.next_delay(0) == 1
    assert budget.next_delay(10) == 2
    assert budget.next_delay(20) is None
    assert budget.next_delay(65) == 2  # the restart at 0 s left the window, not the one at 10 s


def test_given_kamcmd_dialog_list_output_then_every_call_id_is_read() -> None:
    output = """{
\th_entry: 2911
\th_id: 1553
\tcall-id: 1-4242@127.0.0.1
\tfrom_uri: sip:sara@127.0.0.1
\tstate: 4
}
{
\th_entry: 3
\tcall-id: a b;c@host
\tstate: 1
}
"""
    assert parse_dialog_list(output) == {"1-4242@127.0.0.1", "a b;c@host"}
    assert parse_dialog_list("") == set()

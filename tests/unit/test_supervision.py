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


def test_a_health_answer_cut_short_is_no_answer_not_a_crash_of_the_supervisor(tmp_path) -> None:
    """A brain killed in the middle of its /health answer: `tawasol up` must go on to restart
    it (http.client.IncompleteRead is not an OSError)."""
    import socket
    import threading

    from tawasol.config import Settings
    from tawasol.runtime.processes import brain_health

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def answer_half() -> None:
        connection, _ = listener.accept()
        connection.recv(4096)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 54\r\n\r\n{}")
        connection.close()

    thread = threading.Thread(target=answer_half, daemon=True)
    thread.start()
    try:
        settings = Settings(data_dir=tmp_path, api_host="127.0.0.1", api_port=port)
        assert brain_health(settings, timeout_s=2) is None
    finally:
        thread.join(timeout=5)
        listener.close()

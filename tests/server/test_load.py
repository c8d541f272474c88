"""Many clients at once: request/reply and pushes stay correct, and nothing is left behind."""

from __future__ import annotations

import threading

from tests.server.harness import AjaxPeer, WsPeer, running


def test_100_concurrent_clients_doing_request_reply(no_thread_leaks):
    with running() as server:
        errors: list[BaseException] = []
        barrier = threading.Barrier(100)

        def client(i: int) -> None:
            try:
                barrier.wait(10)
                if i % 4 == 0:
                    peer = AjaxPeer(server, uid=f"u{i}")
                    for n in range(5):
                        assert peer.request(["test/echo", [i, n]]) == ({"echo": [i, n]}, None)
                    return
                ws = WsPeer(server, uid=f"u{i}")
                ws.recv()
                for n in range(5):
                    ws.send(["test/echo", [i, n]], f"{i:03d}{n:03d}")
                    assert ws.recv() == ({"echo": [i, n]}, f"{i:03d}{n:03d}")
                ws.send(["test/push-me", i])
                assert ws.recv() == ([["test/pushed", {"got": i}]], None)
                ws.close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors[:3]
        assert not any(t.is_alive() for t in threads)


def test_close_stops_every_thread_and_connection(no_thread_leaks):
    with running() as server:
        peers = [WsPeer(server, uid=f"c{i}") for i in range(5)]
        for peer in peers:
            peer.recv()
        server.app.extensions["sente"].close()
        for peer in peers:
            peer.ws.settimeout(5)
            opcode, _ = peer.ws.recv_data(control_frame=True)
            assert opcode == 8
            peer.close()

"""The fixed messages of the real Sente server, as the transcripts recorded them.

For scripted servers that answer what no transcript records (any uid, any data) and still
write the real server's own bytes wherever the message is a fixed one.
"""

from __future__ import annotations

from wsproto.utilities import generate_accept_token

from flask_sente.packers import EdnPacker
from flask_sente.protocol import DUMMY_CB_200, WS_PING
from tests import transcripts
from tests.client.replay.script import Script, header


class Recorded:
    """The fixed messages of the real server, as the transcripts recorded them."""

    def __init__(self) -> None:
        edn = EdnPacker()
        ws = Script(transcripts.load("cljs-ws"), edn)
        ajax = Script(transcripts.load("cljs-ajax"), edn)
        upgrade = ws.exchanges[0]
        self.upgrade_head = upgrade.answer[0].head
        self.handshake_data = ws.value(upgrade.answer[1])[0][1][2]
        answers = [r for e in ajax.exchanges for r in e.answer if r.kind == "http"]
        self.ajax_head = answers[0].head
        dummy = next(r for r in answers if ajax.value(r) == [DUMMY_CB_200, None])
        self.dummy = dummy.body.decode()
        assert ajax.timeout is not None and ws.ping is not None
        self.timeout = ajax.timeout.body.decode()
        self.ping = ws.ping.body.decode()
        frames = [e for e in ws.exchanges if e.request.opcode == "text" and e.answer]
        pong = next(e for e in frames if ws.value(e.request)[0] == [WS_PING])
        self._pong, self._pong_cb = pong.answer[0].body.decode(), ws.value(pong.request)[1]
        close = next(r for e in ws.exchanges for r in e.answer if r.opcode == "close")
        self.close = (close.close_code or 1000, close.close_reason)

    def pong(self, cb: str) -> str:
        """The recorded ``["pong" cb]`` with this ping's callback id."""
        return self._pong.replace(self._pong_cb, cb)

    def ajax_response(self, body: bytes) -> bytes:
        """The recorded head of an Ajax answer (``text/html``, http-kit's header order)."""
        length = header(self.ajax_head, "content-length")
        head = self.ajax_head.replace(f": {length}\r\n", f": {len(body)}\r\n", 1)
        return head.encode("latin-1") + body

    def upgrade(self, key: bytes) -> bytes:
        """The recorded ``101`` with the accept token of this client's key."""
        token = header(self.upgrade_head, "sec-websocket-accept")
        head = self.upgrade_head.replace(
            f": {token}\r\n", f": {generate_accept_token(key).decode()}\r\n"
        )
        return head.encode("latin-1")


RECORDED = Recorded()

"""Driving :class:`~flask_sente.client.protocol.ClientProtocol` by hand: a fake clock, wire
bytes in, outputs collected. No sockets, no threads, no sleeps."""

from __future__ import annotations

import itertools
from typing import Any, TypeVar

from flask_sente.client.protocol import Answer, ClientProtocol, Emit, Moment, Output, StateChanged
from flask_sente.packers import JsonPacker, Packer

URL = "http://h/chsk"
#: The epoch milliseconds of the fake clock's zero.
EPOCH_MS = 1_700_000_000_000

C = TypeVar("C")

# Server messages as a Sente server writes them with the json packer.
HANDSHAKE = '[["chsk/handshake",["u1",null,{"d":1}]],null]'
PING = '["chsk/ws-ping",null]'
POLL_TIMEOUT = b'["chsk/timeout",null]'


def push(*events: Any, seq: str | None = None) -> str:
    """A push batch, numbered ``seq`` as flask_sente numbers them for a reporting client."""
    return JsonPacker().pack([list(events), None] if seq is None else [list(events), None, seq])


def reply(value: Any, cb_uuid: str) -> str:
    return JsonPacker().pack([value, cb_uuid])


class Driven:
    """A protocol, its fake clock (monotonic seconds from 0), and what it put out."""

    def __init__(self, *, packer: Packer | None = None, **options: Any):
        options.setdefault("csrf_token", "tok")
        counter = itertools.count(1)
        self.t = 0.0
        self.backoffs: list[int] = []
        #: What the protocol's random source returns: below ``simulated_bad_conn_rate``,
        #: the activity at hand is sabotaged.
        self.rand = 0.99
        self.protocol = ClientProtocol(
            URL,
            packer=packer or JsonPacker(),
            client_id="cid",
            random_fn=lambda: self.rand,
            backoff_ms_fn=self._backoff,
            **{"new_cb_uuid": lambda: f"cb{next(counter):04d}", **options},
        )

    def _backoff(self, attempt: int) -> int:
        self.backoffs.append(attempt)
        return 1000 * attempt

    @property
    def now(self) -> Moment:
        return Moment(self.t, EPOCH_MS + int(self.t * 1000))

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> list[Output]:
        """Call the input ``name`` (the time goes in as ``now``); what it put out."""
        self.result = getattr(self.protocol, name)(*args, now=self.now, **kwargs)
        return self.protocol.outputs()

    def later(self, seconds: float) -> list[Output]:
        """Let ``seconds`` pass, then tick."""
        self.t += seconds
        return self("tick")

    @property
    def phase(self) -> str:
        return self.protocol.phase.value

    @property
    def state(self) -> dict[str, Any]:
        return self.protocol.state


def of(kind: type[C], outputs: list[Output]) -> list[C]:
    return [o for o in outputs if isinstance(o, kind)]


def one(kind: type[C], outputs: list[Output]) -> C:
    found = of(kind, outputs)
    assert len(found) == 1, outputs
    return found[0]


def events(outputs: list[Output]) -> list[list[Any]]:
    """What went on ``ch_recv``."""
    return [o.event for o in of(Emit, outputs)]


def answers(outputs: list[Output]) -> list[tuple[Any, Any]]:
    return [(o.handle, o.reply) for o in of(Answer, outputs)]


def states(outputs: list[Output]) -> list[dict[str, Any]]:
    """Each new state map, in order."""
    return [o.new for o in of(StateChanged, outputs)]

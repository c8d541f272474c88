"""The transcript reader reads every recorded line of every real-Sente transcript."""

from __future__ import annotations

import pytest

from tests import transcripts


@pytest.mark.parametrize("name", transcripts.ALL)
def test_every_line_of_every_transcript_is_read(name: str) -> None:
    path = transcripts.TRANSCRIPTS_DIR / f"{name}.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    recorded = [line for line in lines if line.startswith("t=")]
    transcript = transcripts.load(name)
    assert len(transcript.records) == len(recorded)
    assert transcript.scenarios[0].name in {"a", "p1", "r1"}


def test_the_nine_transcripts_are_all_there() -> None:
    assert len(transcripts.ALL) == 9


def test_ws_frames_keep_their_exact_payloads() -> None:
    ws = transcripts.load("cljs-ws")
    handshake = ws.scenario("a").records[-1]
    assert (handshake.kind, handshake.direction, handshake.opcode) == ("ws", "S", "text")
    assert handshake.text == '[[:chsk/handshake ["u-1" nil {:hello "world", :n 1}]] nil]'
    close = next(r for r in ws.scenario("g").records if r.opcode == "close")
    assert (close.close_code, close.close_reason, close.body) == (1000, "", b"\x03\xe8")


def test_http_heads_and_binary_bodies() -> None:
    ajax = transcripts.load("cljs-ajax-msgpack")
    post = next(r for r in ajax.records if r.kind == "http" and r.head.startswith("POST"))
    assert post.header("Content-Length") == "1024"
    assert len(post.body) == 1024 and post.body.endswith(b"\x00" * 900)
    assert "trailing bytes" in post.note
    answer = next(r for r in ajax.records if r.kind == "http" and r.direction == "S")
    assert answer.start_line == "HTTP/1.1 200 OK"
    assert [n for n, _ in answer.headers][:3] == ["Content-Type", "content-length", "Server"]


def test_the_bare_chunk_terminator_of_f11() -> None:
    probe = transcripts.load("raw-ajax-close-probe")
    raw = [r for r in probe.records if r.kind == "raw"]
    assert [r.body for r in raw] == [b"0\r\n\r\n"]


def test_a_line_it_cannot_read_is_an_error() -> None:
    with pytest.raises(ValueError, match="unreadable"):
        transcripts.parse("## scenario a x\nt=+0.1s conn=1 C> SMOKE signal\n")

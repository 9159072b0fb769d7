"""The lean websocket protocol's stand-ins for asyncio.Queue and asyncio.Event keep their semantics.

Every websocket test of the suite runs through the protocol itself (`livemap serve` uses it); these
pin the two small classes' behaviour where a socket test would only see a hang.
"""

from __future__ import annotations

import asyncio

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from livemap.realtime.wsprotocol import _Flag, _Inbox, frame, text_frame


async def test_inbox_hands_out_messages_in_order_and_waits_when_empty() -> None:
    inbox = _Inbox()
    inbox.put_nowait("a")
    inbox.put_nowait("b")
    assert not inbox.empty()
    assert [await inbox.get(), await inbox.get()] == ["a", "b"]
    assert inbox.empty()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0.01)
    assert not reader.done()
    inbox.put_nowait("c")
    assert await asyncio.wait_for(reader, 1) == "c"


async def test_inbox_refuses_a_second_concurrent_reader() -> None:
    inbox = _Inbox()
    first = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="two receivers"):
        await inbox.get()
    inbox.put_nowait("x")
    assert await asyncio.wait_for(first, 1) == "x"


async def test_inbox_survives_a_cancelled_reader() -> None:
    inbox = _Inbox()
    reader = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    inbox.put_nowait("after")
    assert await asyncio.wait_for(inbox.get(), 1) == "after"


async def test_flag_blocks_writers_while_cleared_and_wakes_them_all() -> None:
    flag = _Flag()
    assert flag.is_set()
    await asyncio.wait_for(flag.wait(), 1)  # set: no wait at all
    flag.clear()
    writers = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in writers)
    flag.set()
    flag.clear()  # cleared again at once: the writers woken by set() still go on, as with asyncio.Event
    await asyncio.wait_for(asyncio.gather(*writers), 1)
    assert not flag.is_set()


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65_535, 65_536, 300_000])
def test_frames_parse_as_websockets_reads_them(size: int) -> None:
    """Each length encoding (7-bit, 16-bit, 64-bit), read back by websockets' own client-side parser."""
    payload = (b"ab" * size)[:size]
    reader = StreamReader()
    reader.feed_data(frame(payload) + frame(b"next"))
    parser = Frame.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as done:
        next(parser)
    first: Frame = done.value.value
    assert (first.opcode, first.fin, bytes(first.data)) == (Opcode.TEXT, True, payload)
    with pytest.raises(StopIteration) as done:
        next(Frame.parse(reader.read_exact, mask=False))
    assert bytes(done.value.value.data) == b"next"  # the frame ended exactly where it said


def test_a_message_is_framed_once() -> None:
    message = '{"type":"location","lat":1.5}'
    assert text_frame(message) is text_frame(message)
    assert text_frame(message) == frame(message.encode())

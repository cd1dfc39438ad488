"""How uvicorn serves the gateway (``python -m gateway`` and the tests' suite alike):
bounded request heads, read in bounded time.

uvicorn drops an idle keep-alive connection after ``timeout_keep_alive`` but waits for a
request's head forever: a thousand clients sending one header byte a minute would hold a
thousand connections. ``HeadTimeoutProtocol`` closes a connection whose request line
and headers are not complete ``HEAD_READ_TIMEOUT_SECONDS`` after it opened (or after its
previous response), and answers 431 to a head over ``MAX_HEAD_BYTES`` (h11's own limit
only holds for a head arriving in pieces)."""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_READ_TIMEOUT_SECONDS = 10.0
MAX_HEAD_BYTES = 16 * 1024
KEEP_ALIVE_SECONDS = 5


HEAD_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                  b"content-type: text/plain\r\nconnection: close\r\ncontent-length: 35\r\n"
                  b"x-content-type-options: nosniff\r\n\r\n"
                  b"request line and headers too large\n")


class HeadTimeoutProtocol(H11Protocol):
    head_read_timeout = HEAD_READ_TIMEOUT_SECONDS
    _head_timer: asyncio.TimerHandle | None = None
    _head = b""  # what arrived of the current request's head, up to its limit

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            # The first bytes of a request after an idle keep-alive: its head is timed too.
            if self._head_timer is None:
                self._arm_head_timer()
            self._head += data
            if (len(self._head) > MAX_HEAD_BYTES
                    and b"\r\n\r\n" not in self._head[:MAX_HEAD_BYTES + 4]):
                self._cancel_head_timer()
                self.transport.write(HEAD_TOO_LARGE)
                self.transport.close()
                return
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()
            self._head = b""

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        self._cancel_head_timer()
        super().on_response_complete()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_read_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def uvicorn_options() -> dict:
    return {"http": HeadTimeoutProtocol, "h11_max_incomplete_event_size": MAX_HEAD_BYTES + 4,
            "timeout_keep_alive": KEEP_ALIVE_SECONDS}

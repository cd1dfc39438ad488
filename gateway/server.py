"""How uvicorn serves the gateway (``python -m gateway`` and the tests' suite alike):
httptools' parser (h11's, in pure Python, cost a tenth of the gateway's CPU per request),
with bounded request heads, read in bounded time.

uvicorn drops an idle keep-alive connection after ``timeout_keep_alive`` but waits for a
request's head forever: a thousand clients sending one header byte a minute would hold a
thousand connections. ``HeadTimeoutProtocol`` closes a connection whose request line
and headers are not complete ``HEAD_READ_TIMEOUT_SECONDS`` after it opened (or after its
previous response), and answers 431 to a head over ``MAX_HEAD_BYTES`` (httptools has no
limit of its own)."""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_READ_TIMEOUT_SECONDS = 10.0
MAX_HEAD_BYTES = 16 * 1024
KEEP_ALIVE_SECONDS = 5


HEAD_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                  b"content-type: text/plain\r\nconnection: close\r\ncontent-length: 35\r\n"
                  b"x-content-type-options: nosniff\r\n\r\n"
                  b"request line and headers too large\n")


class HeadTimeoutProtocol(HttpToolsProtocol):
    head_read_timeout = HEAD_READ_TIMEOUT_SECONDS
    # One timer per connection, not one per request: it fires at the deadline of the
    # head it was armed for and, if another head is being read by then, waits again
    # for that one's deadline. A busy keep-alive connection arms it once per timeout.
    _head_timer: asyncio.TimerHandle | None = None
    _head_since: float | None = None  # when the head being read started (loop time)
    _head = b""  # what arrived of the current request's head, up to its limit
    # From the connection's start, and between requests (the last one read to its end and
    # answered, none waiting), until the next request's headers are complete. A body
    # still arriving after its answer (a 413 given before reading it) is no head.
    _reading_head = True
    _request_read = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()

    def data_received(self, data: bytes) -> None:
        if self._reading_head:
            # The first bytes of a request after an idle keep-alive: its head is timed too.
            if self._head_since is None:
                self._start_head()
            self._head += data
            if (len(self._head) > MAX_HEAD_BYTES
                    and b"\r\n\r\n" not in self._head[:MAX_HEAD_BYTES + 4]):
                self._cancel_head_timer()
                self.transport.write(HEAD_TOO_LARGE)
                self.transport.close()
                return
        super().data_received(data)
        if not self._reading_head:
            self._head_since = None
            self._head = b""

    def on_headers_complete(self) -> None:
        self._reading_head = self._request_read = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._request_read = True
        self._await_next_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._await_next_head()

    def _await_next_head(self) -> None:
        if (self._request_read and not self.pipeline
                and (self.cycle is None or self.cycle.response_complete)):
            self._reading_head = True

    def _start_head(self) -> None:
        self._head_since = self.loop.time()
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_read_timeout,
                                                    self._head_deadline)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_deadline(self) -> None:
        self._head_timer = None
        if (not self._reading_head or self._head_since is None
                or self.transport.is_closing()):
            return
        remaining = self._head_since + self.head_read_timeout - self.loop.time()
        if remaining > 0:  # a later head than the one the timer was armed for
            self._head_timer = self.loop.call_later(remaining, self._head_deadline)
        else:
            self.transport.close()


def uvicorn_options() -> dict:
    return {"http": HeadTimeoutProtocol, "timeout_keep_alive": KEEP_ALIVE_SECONDS}

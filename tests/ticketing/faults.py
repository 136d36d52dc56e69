"""A TCP proxy in front of a real ticket system, to break the connection on purpose.

Modes:
- "up": forwards both ways.
- "down": accepts and closes at once, as a stopped server behind a load balancer
  would (the client sees a connection reset / an empty answer).
- "lose_answers": forwards the request, lets the server act on it, then drops its
  answer, so the client times out not knowing the outcome.
- "lose_post_answers": the same for POST requests only (a create that timed out
  after the remote side made the ticket), while lookups are answered.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator


class FaultyProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = "up"
        self.connections = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._server.close()

    @contextlib.contextmanager
    def mode_set(self, mode: str) -> Iterator[None]:
        previous, self.mode = self.mode, mode
        try:
            yield
        finally:
            self.mode = previous

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(client, self.mode), daemon=True).start()

    def _handle(self, client: socket.socket, mode: str) -> None:
        # The mode is read again for every chunk: requests keeps connections
        # open, and one opened while "up" must fail too once the proxy is "down".
        with client:
            if self.mode == "down":
                _reset(client)
                return
            try:
                upstream = socket.create_connection(self.target, timeout=30)
            except OSError:
                return
            # What the last request on this connection was (keep-alive: several in turn).
            last_request = {"method": b""}
            with upstream:
                forward = threading.Thread(
                    target=self._pipe, args=(client, upstream, False, last_request), daemon=True
                )
                forward.start()
                self._pipe(upstream, client, True, last_request)
                forward.join(timeout=1)

    def _pipe(
        self, source: socket.socket, sink: socket.socket, answers: bool, last_request: dict
    ) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if self.mode == "down":
                    _reset(sink if answers else source)
                    return
                if not answers and chunk[:8].split(b" ")[0].isalpha():
                    last_request["method"] = chunk.split(b" ", 1)[0]
                if answers and (
                    self.mode == "lose_answers"
                    or (self.mode == "lose_post_answers" and last_request["method"] == b"POST")
                ):
                    continue  # the server acted; its answer never arrives
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a dead peer looks to the client."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

"""A TCP proxy on loopback that a test can break: cut every connection, or stop answering.

``cut()`` closes every open connection at once (a pulled cable, a restarted load balancer);
new ones go through.  ``refuse()`` is a server that is down: the port refuses connections and
every open one is cut.  ``blackhole()`` keeps every connection open but forwards nothing, and
accepts new connections without forwarding them either: a server that stopped answering, the
case time-outs exist for.  ``restore()`` forwards again (what was held back flows on) and
accepts again on the same port.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator

__all__ = ["Proxy", "proxy"]


class Proxy:
    """Forwards ``127.0.0.1:port`` to ``target``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener: socket.socket | None = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        #: Bumped by ``cut()``: a connection of an earlier generation stops at once, even one
        #: that was being set up while the cut happened.
        self._generation = 0
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = threading.Event()
        #: Bytes forwarded from clients to the target, in all.
        self.bytes_up = 0
        self._on_up: list[tuple[int, threading.Event]] = []
        self._cut_at: list[tuple[int, threading.Event]] = []
        self._start_accepting()

    def _start_accepting(self) -> None:
        thread = threading.Thread(target=self._accept, args=(self._listener,), daemon=True)
        thread.start()

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Close every open connection (both sides)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
            self._generation += 1
        for a, b in pairs:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def refuse(self) -> None:
        """Close the port, so that connections are refused, and cut every open one."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            _stop_listening(listener)
        self.cut()

    def blackhole(self) -> None:
        """Forward nothing, in either direction, on old or new connections."""
        self._forwarding.clear()

    def restore(self) -> None:
        """Forward again, and accept again if the port was closed."""
        with self._lock:
            reopen = self._listener is None
            if reopen:
                self._listener = socket.create_server(("127.0.0.1", self.port))
        if reopen:
            self._start_accepting()
        self._forwarding.set()

    def when_up(self, count: int) -> threading.Event:
        """An event set once ``count`` bytes have gone from clients to the target."""
        event = threading.Event()
        with self._lock:
            if self.bytes_up >= count:
                event.set()
            else:
                self._on_up.append((count, event))
        return event

    def cut_when_up(self, count: int) -> threading.Event:
        """Cut every connection as soon as ``count`` bytes have gone from clients to the target,
        from the thread that forwarded them, so that no later bytes of that connection get
        through first, however busy the machine; the event is set once the cut is done."""
        event = threading.Event()
        with self._lock:
            due = self.bytes_up >= count
            if not due:
                self._cut_at.append((count, event))
        if due:
            self.cut()
            event.set()
        return event

    def close(self) -> None:
        self._closed.set()
        self._forwarding.set()
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            _stop_listening(listener)
        self.cut()

    def _accept(self, listener: socket.socket) -> None:
        while not self._closed.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            # The generation of the moment it was accepted: a cut before its thread runs stops it.
            generation = self._generation
            threading.Thread(target=self._connect, args=(client, generation), daemon=True).start()

    def _connect(self, client: socket.socket, generation: int) -> None:
        self._forwarding.wait()
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            if generation != self._generation:
                for sock in (client, upstream):
                    sock.close()
                return
            self._pairs.append((client, upstream))
        self._pump(client, upstream, generation)

    def _pump(self, client: socket.socket, upstream: socket.socket, generation: int) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        try:
            while not self._closed.is_set() and generation == self._generation:
                if not self._forwarding.is_set():
                    self._forwarding.wait(0.05)
                    continue
                for key, _ in selector.select(timeout=0.05):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        data = source.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    try:
                        key.data.sendall(data)
                    except OSError:
                        return
                    if source is client:
                        self._count_up(len(data))
        finally:
            selector.close()
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.close()

    def _count_up(self, size: int) -> None:
        with self._lock:
            self.bytes_up += size
            due = [(n, e) for n, e in self._on_up if self.bytes_up >= n]
            self._on_up = [(n, e) for n, e in self._on_up if self.bytes_up < n]
            cuts = [(n, e) for n, e in self._cut_at if self.bytes_up >= n]
            self._cut_at = [(n, e) for n, e in self._cut_at if self.bytes_up < n]
        if cuts:
            self.cut()
        for _, event in due + cuts:
            event.set()


def _stop_listening(listener: socket.socket) -> None:
    """Close a listening socket for good: ``close`` alone leaves it accepting while another
    thread waits in ``accept`` on it; ``shutdown`` wakes that thread."""
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()


@contextlib.contextmanager
def proxy(host: str, port: int) -> Iterator[Proxy]:
    """A proxy to ``host:port``, closed on exit."""
    running = Proxy((host, port))
    try:
        yield running
    finally:
        running.close()

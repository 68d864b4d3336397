"""A loopback SOCKS5 proxy (no authentication, CONNECT only) that can be cut and restored.

A plain TCP proxy cannot take Kafka away from one client: after the bootstrap, the
client connects to the address the broker advertises, around the proxy. A client told
``proxy_url="socks5://127.0.0.1:PORT"`` sends every connection through this one, so
:meth:`stop` cuts it off from the shared broker completely (refused, and every open
connection reset), without touching the broker other tests use.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from .tcp_proxy import TcpProxy


class Socks5Proxy(TcpProxy):
    def __init__(self) -> None:
        super().__init__(("", 0))  # each client names its target

    @property
    def url(self) -> str:
        return f"socks5://127.0.0.1:{self.port}"

    def _accept(self, listener: socket.socket) -> None:
        """Each client's handshake on its own thread; ends when the listener is cut."""
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(5)
            _, methods = _read(client, 2)
            _read(client, methods)
            client.sendall(b"\x05\x00")  # no authentication
            _, command, _, kind = _read(client, 4)
            if kind == 1:
                host = socket.inet_ntoa(_read(client, 4))
            elif kind == 3:
                host = _read(client, _read(client, 1)[0]).decode()
            else:
                host = socket.inet_ntop(socket.AF_INET6, _read(client, 16))
            (port,) = struct.unpack("!H", _read(client, 2))
            if command != 1:
                raise OSError("only CONNECT")
            upstream = socket.create_connection((host, port), timeout=5)
        except OSError:
            client.close()
            return
        try:
            client.sendall(b"\x05\x00\x00\x01" + bytes(6))
            client.settimeout(None)
            upstream.settimeout(None)
        except OSError:
            client.close()
            upstream.close()
            return
        with self._lock:
            if self._listener is None:  # cut meanwhile
                client.close()
                upstream.close()
                return
            self._conns.update((client, upstream))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()


def _read(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("closed during the SOCKS handshake")
        data += chunk
    return data

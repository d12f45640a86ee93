"""A TLS front for a plain-HTTP emulator: terminates TLS with a given certificate and relays the
bytes, as a load balancer or ingress in front of the real service would.

Used to put the Sekoia emulator behind HTTPS with a private certificate without teaching the
emulator TLS itself.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from pathlib import Path


class TLSFront:
    """Listens on 127.0.0.1 (free port) and relays each TLS connection to ``backend``."""

    def __init__(self, backend: tuple[str, int], cert: Path, key: Path) -> None:
        self.backend = backend
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(cert), str(key))
        self.handshake_failures: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stopped = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:<port>``."""
        return f"https://127.0.0.1:{self._listener.getsockname()[1]}"

    def start(self) -> str:
        """Accept connections in the background; returns the base URL."""
        threading.Thread(target=self._accept, name="tls-front", daemon=True).start()
        return self.base_url

    def stop(self) -> None:
        """Stop accepting and cut every relayed connection."""
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            secure = self.context.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.handshake_failures.append(type(exc).__name__)
            client.close()
            return
        try:
            upstream = socket.create_connection(self.backend, timeout=10)
        except OSError:
            secure.close()
            return
        with self._lock:
            self._open.update((secure, upstream))
        relay = threading.Thread(target=_pump, args=(upstream, secure), daemon=True)
        relay.start()
        _pump(secure, upstream)
        relay.join(timeout=30)
        with self._lock:
            self._open.difference_update((secure, upstream))


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy until either side closes, then close both (a half-close is not worth more here)."""
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.close()

"""`veil s3 serve`: the S3 application on ``veil.net.server`` (plain HTTP, bounded workers).

Put TLS in front of it (a reverse proxy) for anything but 127.0.0.1: SigV4 protects requests
from tampering, not bodies from being read on the wire.
Imports from: veil.client, veil.net, veil.s3.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from veil.client.network import Network
from veil.net.server import HTTPSServer, Limits, serve
from veil.s3.app import S3App, S3Config, server_error
from veil.s3.meta import MetaStore
from veil.s3.store import Store

# S3 clients open many connections and send big bodies; parts upload in parallel.
S3_LIMITS = Limits(workers=32, workers_per_ip=32, queue=256, max_per_ip=512, max_connections=1024,
                   io_timeout=60.0, idle_timeout=60.0, min_rate=16 * 1024)  # fmt: skip


class Endpoint:
    def __init__(self, config: S3Config, network: Callable[[], Network], meta_path: Path | None,
                 limits: Limits = S3_LIMITS) -> None:  # fmt: skip
        self.meta = MetaStore(meta_path)
        self.app = S3App(config, network, Store(network, self.meta))
        self.limits = limits
        self.server: HTTPSServer | None = None
        self._lock = threading.Lock()

    def start(self, host: str, port: int) -> tuple[str, int]:
        self.server = serve((host, port), self.app.router, None, limits=self.limits, error_response=server_error)
        return self.server.server_address

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.meta.close()

"""One S3 request as the handlers see it, and the responses they give (S3's XML and headers).

Imports from: veil.net, veil.format, veil.s3.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate

from veil.client.network import Network
from veil.format.folder_caps import FolderWriteCap
from veil.net.server import Request, Response
from veil.s3 import xmlio
from veil.s3.errors import S3Error
from veil.s3.sigv4 import Verified
from veil.s3.store import Store
from veil.s3.transfer import BodyReader

MAX_XML_BODY = 2 << 20  # a CompleteMultipartUpload of 10,000 parts fits


@dataclass
class Ctx:
    req: Request
    rid: str
    root: FolderWriteCap
    auth: Verified | None
    bucket: str | None
    key: str | None
    store: Store
    network: Callable[[], Network]
    k: int
    n: int
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def query(self) -> dict[str, str]:
        return self.req.query

    def header(self, name: str) -> str | None:
        return self.req.headers.get(name)

    def body_reader(self) -> BodyReader:
        return BodyReader(self.req, self.auth, self.header)

    def small_body(self, limit: int = MAX_XML_BODY) -> bytes:
        """A whole (XML) body, bounded before it is read, every digest checked."""
        r = self.body_reader()
        if r.size > limit:
            raise S3Error("MaxMessageLengthExceeded", f"the request body is over {limit} bytes")
        buf = bytearray(r.size)
        mv = memoryview(buf)
        got = 0
        while got < r.size:
            n = r.readinto(mv[got:])
            if not n:
                raise S3Error("IncompleteBody", "the request body ended early")
            got += n
        r.finish()
        return bytes(buf)


def xml(root: str, children: list[tuple[str, xmlio.Value]], status: int = 200) -> Response:
    return Response(status=status, body=xmlio.render(root, children), content_type="application/xml")


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def iso_date(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(ts))


def empty(status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(status=status, body=b"", headers=dict(headers or {}))

"""TLS contexts: a node serves its self-signed Ed25519 certificate and a caller pins the node id; the gateway serves browsers web certificates by SNI."""

from __future__ import annotations

import ssl
from pathlib import Path

from veil.crypto.certs import public_key_from_cert_der, self_signed_cert_pem
from veil.crypto.sign import SigningKey, node_id
from veil.durable import write_atomic
from veil.errors import IntegrityError, UsageError


def server_context(key: SigningKey, cert_dir: Path) -> ssl.SSLContext:
    """A TLS 1.3-only server context presenting ``key``'s certificate (written to cert_dir)."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = self_signed_cert_pem(key)
    cert_path, key_path = cert_dir / "cert.pem", cert_dir / "key.pem"
    write_atomic(cert_path, cert_pem)
    write_atomic(key_path, key_pem, 0o600)  # replaced, so an old file's loose mode never survives
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(str(cert_path), str(key_path))
    return ctx


_client_ctx: ssl.SSLContext | None = None


def client_context() -> ssl.SSLContext:
    """TLS 1.3 client context. Chain checks are off on purpose: identity comes from the pin."""
    global _client_ctx
    if _client_ctx is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        _client_ctx = ctx
    return _client_ctx


def peer_node_id(sock: ssl.SSLSocket) -> bytes:
    der = sock.getpeercert(binary_form=True)
    if der is None:
        raise IntegrityError("peer presented no certificate")
    return node_id(public_key_from_cert_der(der))


def check_pin(sock: ssl.SSLSocket, expected: bytes | None, where: str) -> bytes:
    """Return the peer's node id; IntegrityError if it is not ``expected``."""
    got = peer_node_id(sock)
    if expected is not None and got != expected:
        raise IntegrityError(f"{where} is not the node expected: its key does not match the pinned node id")
    return got


def web_server_context(default: tuple[Path, Path], by_host: dict[str, tuple[Path, Path]]) -> ssl.SSLContext:
    """A TLS 1.2+ server context for browsers (the gateway's HTTPS listener): each host name in
    ``by_host`` is answered with its own certificate chain and key, chosen by SNI; other names
    (and clients sending none) get ``default``. Paths are PEM files; a bad one fails here."""
    def load(pair: tuple[Path, Path]) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(str(pair[0]), str(pair[1]))
        except (OSError, ssl.SSLError) as e:
            raise UsageError(f"cannot use certificate {pair[0]} with key {pair[1]}: {e}") from e
        return ctx

    contexts = {host.lower(): load(pair) for host, pair in by_host.items()}
    main = load(default)

    def pick(sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        chosen = contexts.get((name or "").lower())
        if chosen is not None:
            sock.context = chosen

    main.sni_callback = pick
    return main

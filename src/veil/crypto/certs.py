"""Self-signed X.509 certificates carrying a node's Ed25519 key, and pin extraction.

There is no CA: a caller pins the node id (SHA-256 of the Ed25519 public key in the peer's
certificate). TLS 1.3's CertificateVerify proves the peer holds the private key.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from veil.crypto.sign import SigningKey
from veil.errors import IntegrityError


def self_signed_cert_pem(key: SigningKey) -> tuple[bytes, bytes]:
    """Return (certificate PEM, private key PEM) for ``key``."""
    sk = ed25519.Ed25519PrivateKey.from_private_bytes(key.seed)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "veil-node")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(sk.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(datetime.datetime(9999, 12, 31, tzinfo=datetime.UTC))
        .sign(sk, None)
    )
    key_pem = sk.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def public_key_from_cert_der(der: bytes) -> bytes:
    """The raw Ed25519 public key in a DER certificate; IntegrityError if it holds another kind."""
    try:
        pub = x509.load_der_x509_certificate(der).public_key()
    except ValueError as e:
        raise IntegrityError("peer certificate is malformed") from e
    if not isinstance(pub, ed25519.Ed25519PublicKey):
        raise IntegrityError("peer certificate does not carry an Ed25519 key")
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

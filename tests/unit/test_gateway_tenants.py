"""Tenants files: parsing, validation messages, host routing, and the headers each gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.errors import UsageError
from veil.gateway.security import csp, security_headers
from veil.gateway.tenants import DEFAULT_TENANT, load_tenants, normalize_host, parse_tenants


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "tenants.toml"
    p.write_text(text)
    return p


def test_full_tenant(tmp_path: Path) -> None:
    (tmp_path / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    ts = load_tenants(_write(tmp_path, """
unknown_host = "404"
[tenant.acme]
hosts = ["files.acme.example", "Acme.localhost"]
name = "Acme Files"
logo = "logo.svg"
colors = { accent = "#D0442C" }
footer = [{ label = "Terms", url = "https://acme.example/terms" }]
max_file_size = "2GB"
allowed_types = ["image/*", "application/pdf"]
embed_origins = ["https://www.acme.example/"]
"""))
    t = ts.for_host("files.acme.example:443")
    assert t is not None and t.name == "Acme Files"
    assert ts.for_host("ACME.localhost") is t
    assert ts.for_host("evil.example") is None
    assert t.colors["accent"] == "#d0442c" and t.colors["text"]  # defaults fill the rest
    assert t.max_file_size == 2 * 10**9
    assert t.embed_origins == ("https://www.acme.example",)
    assert t.logo is not None and t.logo_type == "image/svg+xml"
    assert t.type_allowed("image/png") and t.type_allowed("application/pdf") and not t.type_allowed("text/html")


def test_default_tenant_for_unknown_hosts(tmp_path: Path) -> None:
    ts = load_tenants(_write(tmp_path, '[tenant.a]\nhosts=["a.example"]\n[tenant.b]\nhosts=["b.example"]\n'))
    assert ts.for_host("x.example") is ts.tenants[0]
    ts2 = parse_tenants({"default": "b", "tenant": {"a": {"hosts": ["a.example"]}, "b": {}}}, tmp_path)
    assert ts2.for_host("unknown").id == "b"  # type: ignore[union-attr]
    assert load_tenants(None).for_host("anything") is DEFAULT_TENANT


@pytest.mark.parametrize("body, needle", [
    ('[tenant.a]\ncolors = { accent = "red; background: url(x)" }', "colors.accent"),
    ('[tenant.a]\nfooter = [{ label = "x", url = "javascript:alert(1)" }]', "only http"),
    ('[tenant.a]\nembed_origins = ["https://a.example/path"]', "not an origin"),
    ('[tenant.a]\nmax_file_size = "lots"', "max_file_size"),
    ('[tenant.a]\nallowed_types = ["<script>"]', "allowed_types"),
    ('[tenant.a]\nhosts = ["a.example"]\n[tenant.b]\nhosts = ["a.example"]', "claimed by both"),
    ('[tenant.a]\nsurprise = 1', "unknown keys"),
    ('[tenant.a]\nlogo = "missing.svg"', "cannot read"),
    ('[tenant.a]\nname = "line\\nbreak"', "one-line"),
    ('unknown_host = "maybe"\n[tenant.a]', "unknown_host"),
    ("nope = [", "not valid TOML"),
    ("", "at least one"),
])
def test_bad_tenants_files_name_the_field(tmp_path: Path, body: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle.replace("(", r"\(")):
        load_tenants(_write(tmp_path, body))


def test_host_normalization() -> None:
    assert normalize_host("Files.Example:8080") == "files.example"
    assert normalize_host("[::1]:80") == "[::1]"
    assert normalize_host("") == ""


def test_headers() -> None:
    t = parse_tenants({"tenant": {"a": {"embed_origins": ["https://shop.example"]}}}, Path("."))
    tenant = t.tenants[0]
    page = security_headers(tenant)
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]
    assert page["X-Frame-Options"] == "DENY"
    assert page["Referrer-Policy"] == "no-referrer" and page["X-Content-Type-Options"] == "nosniff"
    embed = security_headers(tenant, embeddable=True)
    assert "frame-ancestors 'self' https://shop.example" in embed["Content-Security-Policy"]
    assert "X-Frame-Options" not in embed
    policy = csp(tenant)
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy
    assert "http" not in policy.replace("https://shop.example", "")  # no third-party origins


def test_texts_embed_flag_and_certificates(tmp_path: Path) -> None:
    """Issue 16: every page text per tenant, the embed snippet only on request, cert/key together."""
    (tmp_path / "a.crt").write_text("x")
    (tmp_path / "a.key").write_text("x")
    ts = load_tenants(_write(tmp_path, """
[tenant.a]
hosts = ["a.example"]
tagline = "old style intro"
show_embed = true
cert = "a.crt"
key = "a.key"
texts = { heading = "Send to A", footer_note = "Run by A" }
[tenant.b]
"""))
    a, b = ts.tenants
    assert a.texts["heading"] == "Send to A" and a.texts["footer_note"] == "Run by A"
    assert a.texts["intro"] == a.tagline == "old style intro"
    assert a.show_embed and a.public()["show_embed"] is True and not b.show_embed
    assert a.cert == tmp_path / "a.crt" and b.cert is None
    assert b.texts["heading"] == "Share files, encrypted"
    for bad, msg in [('texts = { nope = "x" }', "unknown text"), ('texts = { heading = "" }', "texts.heading"),
                     ('cert = "a.crt"', "cert and key go together"), ('show_embed = 1', "show_embed"),
                     ('cert = "a.crt"\nkey = "missing.key"\nhosts = ["h.example"]', "no such file"),
                     ('cert = "a.crt"\nkey = "a.key"', "needs hosts")]:
        with pytest.raises(UsageError, match=msg):
            load_tenants(_write(tmp_path, f"[tenant.x]\n{bad}\n"))
    with pytest.raises(UsageError, match="HTTPS needs a certificate"):
        load_tenants(_write(tmp_path, "[tenant.x]\n")).tls_context()
    with pytest.raises(UsageError, match="cannot use certificate"):
        ts.tls_context()  # "x" is no PEM

"""White-label tenants: who a request is for (by Host header), and how that tenant looks and limits.

A tenants file (TOML) looks like::

    unknown_host = "default"          # or "404": hosts not listed get a clear 404 page
    default = "veil"                  # the tenant unknown hosts get (first tenant if unset)

    [tenant.acme]
    hosts = ["files.acme.example", "acme.localhost"]
    name = "Acme Files"
    logo = "acme.svg"                 # path relative to the tenants file; SVG, PNG, JPEG or WebP
    colors = { accent = "#d0442c", background = "#fffaf5", text = "#222222" }
    footer = [{ label = "Terms", url = "https://acme.example/terms" }]
    max_file_size = "2GB"
    allowed_types = ["image/*", "application/pdf"]
    embed_origins = ["https://www.acme.example"]
    show_embed = true                 # the "Add this uploader to your site" snippet (default: false)
    cert = "acme.crt"                 # HTTPS for these hosts with this certificate (SNI; with --tls-listen)
    key = "acme.key"
    [tenant.acme.texts]               # every visible text of the pages (TEXT_DEFAULTS lists the keys)
    heading = "Send files to Acme"
    footer_note = "Run by Acme Ltd."

Every value is checked here, at load time, so a bad file fails `veil gateway` at start with
a message naming the field, never a request later. Nothing from the file is ever put into a
page unescaped: colours must be #rgb/#rrggbb, links must be http(s), origins must be origins.
"""

from __future__ import annotations

import re
import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from veil.errors import UsageError
from veil.format import textparse
from veil.net.tls import web_server_context

DEFAULT_MAX_FILE = 100 * 10**9
MAX_LOGO = 256 * 1024
LOGO_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".webp": "image/webp"}
COLOR_KEYS = ("accent", "background", "text", "muted", "surface")
DEFAULT_COLORS = {"accent": "#2f5bd3", "background": "#f6f7fb", "text": "#1b1d24", "muted": "#5b6070",
                  "surface": "#ffffff"}
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_MIME_PATTERN = re.compile(r"^(?:\*/\*|[a-z0-9][a-z0-9!#$&^_.+-]*/(?:\*|[a-z0-9][a-z0-9!#$&^_.+-]*))$")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
# The pages' fixed texts, each replaceable per tenant ([tenant.X.texts]); ``intro`` is the old ``tagline``.
TEXT_DEFAULTS: dict[str, str] = {
    "heading": "Share files, encrypted",
    "intro": "End-to-end encrypted file sharing. Your browser encrypts; we only ever see ciphertext.",
    "drop_hint": "Drop files here, or",
    "choose": "Choose files",
    "my_files": "My files",
    "my_files_note": "Kept in this browser only, encrypted; other browsers and devices do not see this list.",
    "file_eyebrow": "Encrypted file",
    "download": "Download",
    "file_note": "Decrypted in this page with the key after the '#' in the link. The gateway never receives it.",
    "notfound_title": "Nothing here",
    "notfound_body": "This page does not exist.",
    "notfound_link": "Share a file",
    "footer_note": "End-to-end encrypted with Veil",
    "embed_title": "Add this uploader to your site",
}


@dataclass(frozen=True)
class FooterLink:
    label: str
    url: str


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str = "Veil"
    hosts: tuple[str, ...] = ()
    colors: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_COLORS))
    footer: tuple[FooterLink, ...] = ()
    max_file_size: int = DEFAULT_MAX_FILE
    allowed_types: tuple[str, ...] = ()  # empty: every type
    embed_origins: tuple[str, ...] = ()
    logo: bytes | None = None
    logo_type: str = "image/svg+xml"
    texts: dict[str, str] = field(default_factory=lambda: dict(TEXT_DEFAULTS))
    show_embed: bool = False
    cert: Path | None = None  # PEM certificate chain for this tenant's hosts (HTTPS by SNI)
    key: Path | None = None

    @property
    def tagline(self) -> str:
        return self.texts["intro"]

    def type_allowed(self, mime: str) -> bool:
        if not self.allowed_types:
            return True
        mime = mime.lower()
        for pat in self.allowed_types:
            if pat == "*/*" or pat == mime or (pat.endswith("/*") and mime.startswith(pat[:-1])):
                return True
        return False

    def public(self) -> dict[str, Any]:
        """What the page may know about its tenant (served as JSON at /api/tenant)."""
        return {
            "id": self.id, "name": self.name, "max_file_size": self.max_file_size,
            "allowed_types": list(self.allowed_types), "embed_origins": list(self.embed_origins),
            "show_embed": self.show_embed,
        }


DEFAULT_TENANT = Tenant(id="veil")


@dataclass(frozen=True)
class TenantSet:
    tenants: tuple[Tenant, ...] = (DEFAULT_TENANT,)
    default: Tenant | None = DEFAULT_TENANT  # None: unknown hosts get a 404

    def tls_context(self) -> ssl.SSLContext:
        """HTTPS for browsers: every tenant host with a certificate gets its own (SNI); other names
        get the default tenant's certificate, or the first tenant's that has one."""
        pairs = [(t, t.cert, t.key) for t in self.tenants if t.cert is not None and t.key is not None]
        if not pairs:
            raise UsageError("HTTPS needs a certificate: give at least one tenant cert and key in the tenants file")
        by_host = {h: (c, k) for t, c, k in pairs for h in t.hosts if c is not None and k is not None}
        _, c, k = next((p for p in pairs if p[0] is self.default), pairs[0])
        assert c is not None and k is not None
        return web_server_context((c, k), by_host)

    def for_host(self, host_header: str | None) -> Tenant | None:
        host = normalize_host(host_header or "")
        for t in self.tenants:
            if host in t.hosts:
                return t
        return self.default


def normalize_host(header: str) -> str:
    """``Files.Example:8080`` -> ``files.example``; IPv6 literals keep their brackets."""
    h = header.strip().lower()
    if h.startswith("["):
        return h.split("]", 1)[0] + "]"
    return h.rsplit(":", 1)[0] if ":" in h else h


def parse_size(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        return textparse.parse_size(value, where)
    raise UsageError(f"{where}: expected a size such as 2GB or 500MiB, got {value!r}")


def _str(m: dict[str, Any], key: str, where: str, default: str, max_len: int = 200) -> str:
    v = m.get(key, default)
    if not isinstance(v, str) or not 0 < len(v) <= max_len or any(ord(c) < 32 for c in v):
        raise UsageError(f"{where}.{key}: expected a one-line string of at most {max_len} characters")
    return v


def _origin(text: Any, where: str) -> str:
    if not isinstance(text, str):
        raise UsageError(f"{where}: expected an origin string")
    u = urlsplit(text)
    if u.scheme not in ("http", "https") or not u.hostname or u.path not in ("", "/") or u.query or u.fragment:
        raise UsageError(f"{where}: {text!r} is not an origin (scheme://host[:port])")
    return f"{u.scheme}://{u.netloc.lower()}"


def _tenant(tid: str, m: Any, base: Path) -> Tenant:
    where = f"tenant.{tid}"
    if not isinstance(m, dict):
        raise UsageError(f"{where}: expected a table")
    known = {"hosts", "name", "logo", "colors", "footer", "max_file_size", "allowed_types", "embed_origins", "tagline",
             "texts", "show_embed", "cert", "key"}
    if extra := set(m) - known:
        raise UsageError(f"{where}: unknown keys {sorted(extra)}")
    hosts = m.get("hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and _HOST.match(h.lower()) for h in hosts):
        raise UsageError(f"{where}.hosts: expected a list of host names")
    colors = dict(DEFAULT_COLORS)
    raw_colors = m.get("colors", {})
    if not isinstance(raw_colors, dict):
        raise UsageError(f"{where}.colors: expected a table")
    for k, v in raw_colors.items():
        if k not in COLOR_KEYS or not isinstance(v, str) or not _COLOR.match(v):
            raise UsageError(f"{where}.colors.{k}: expected one of {COLOR_KEYS} set to #rgb or #rrggbb")
        colors[k] = v.lower()
    footer: list[FooterLink] = []
    for i, f in enumerate(m.get("footer", [])):
        if not isinstance(f, dict) or set(f) != {"label", "url"}:
            raise UsageError(f"{where}.footer[{i}]: expected {{label, url}}")
        url = _str(f, "url", f"{where}.footer[{i}]", "", 500)
        if urlsplit(url).scheme not in ("http", "https", "mailto"):
            raise UsageError(f"{where}.footer[{i}].url: only http, https and mailto links are allowed")
        footer.append(FooterLink(_str(f, "label", f"{where}.footer[{i}]", "", 80), url))
    types = m.get("allowed_types", [])
    if not isinstance(types, list) or not all(isinstance(t, str) and _MIME_PATTERN.match(t.lower()) for t in types):
        raise UsageError(f"{where}.allowed_types: expected a list of MIME types such as image/* or application/pdf")
    origins = tuple(_origin(o, f"{where}.embed_origins") for o in m.get("embed_origins", []))
    logo: bytes | None = None
    logo_type = "image/svg+xml"
    if "logo" in m:
        path = base / _str(m, "logo", where, "", 500)
        logo_type = LOGO_TYPES.get(path.suffix.lower(), "")
        if not logo_type:
            raise UsageError(f"{where}.logo: use an .svg, .png, .jpg or .webp file")
        try:
            logo = path.read_bytes()
        except OSError as e:
            raise UsageError(f"{where}.logo: cannot read {path}: {e.strerror or e}") from e
        if len(logo) > MAX_LOGO:
            raise UsageError(f"{where}.logo: {path} is over {MAX_LOGO // 1024} KiB")
    texts = dict(TEXT_DEFAULTS)
    if "tagline" in m:
        texts["intro"] = _str(m, "tagline", where, "", 300)
    raw_texts = m.get("texts", {})
    if not isinstance(raw_texts, dict):
        raise UsageError(f"{where}.texts: expected a table")
    for k in raw_texts:
        if k not in TEXT_DEFAULTS:
            raise UsageError(f"{where}.texts.{k}: unknown text; known: {', '.join(TEXT_DEFAULTS)}")
        texts[k] = _str(raw_texts, k, f"{where}.texts", "", 500)
    show_embed = m.get("show_embed", False)
    if not isinstance(show_embed, bool):
        raise UsageError(f"{where}.show_embed: expected true or false")
    if ("cert" in m) != ("key" in m):
        raise UsageError(f"{where}: cert and key go together")
    cert = key = None
    if "cert" in m:
        cert, key = (base / _str(m, n, where, "", 500) for n in ("cert", "key"))
        for n, p in (("cert", cert), ("key", key)):
            if not p.is_file():
                raise UsageError(f"{where}.{n}: no such file {p}")
        if not hosts:
            raise UsageError(f"{where}: a certificate needs hosts to serve it for")
    return Tenant(
        id=tid, name=_str(m, "name", where, "Veil", 80), hosts=tuple(h.lower() for h in hosts), colors=colors,
        footer=tuple(footer), max_file_size=parse_size(m.get("max_file_size", DEFAULT_MAX_FILE), f"{where}.max_file_size"),
        allowed_types=tuple(t.lower() for t in types), embed_origins=origins, logo=logo, logo_type=logo_type,
        texts=texts, show_embed=show_embed, cert=cert, key=key,
    )


def parse_tenants(value: dict[str, Any], base: Path) -> TenantSet:
    if extra := set(value) - {"unknown_host", "default", "tenant"}:
        raise UsageError(f"tenants file: unknown keys {sorted(extra)}")
    raw = value.get("tenant", {})
    if not isinstance(raw, dict) or not raw:
        raise UsageError("tenants file: define at least one [tenant.<id>] table")
    tenants = tuple(_tenant(tid, m, base) for tid, m in raw.items())
    seen: dict[str, str] = {}
    for t in tenants:
        for h in t.hosts:
            if h in seen:
                raise UsageError(f"tenants file: host {h!r} is claimed by both {seen[h]!r} and {t.id!r}")
            seen[h] = t.id
    mode = value.get("unknown_host", "default")
    if mode not in ("default", "404"):
        raise UsageError("tenants file: unknown_host must be \"default\" or \"404\"")
    default_id = value.get("default", tenants[0].id)
    by_id = {t.id: t for t in tenants}
    if default_id not in by_id:
        raise UsageError(f"tenants file: default tenant {default_id!r} is not defined")
    return TenantSet(tenants, by_id[default_id] if mode == "default" else None)


def load_tenants(path: Path | None) -> TenantSet:
    if path is None:
        return TenantSet()
    try:
        value = tomllib.loads(path.read_text())
    except OSError as e:
        raise UsageError(f"cannot read tenants file {path}: {e.strerror or e}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"tenants file {path} is not valid TOML: {e}") from e
    return parse_tenants(value, path.parent)

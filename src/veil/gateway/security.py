"""The headers every gateway response carries, and the Content-Security-Policy per page kind.

No inline script or style, no third-party origin anywhere: every asset comes from the
gateway itself. Framing is refused everywhere except the embed widget, which the tenant's
listed origins (and nobody else) may frame.
"""

from __future__ import annotations

from veil.gateway.tenants import Tenant

_BASE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; media-src 'self' blob:; "
    "frame-src 'self' blob:; object-src 'none'; connect-src 'self'; worker-src 'self'; manifest-src 'self'; "
    "font-src 'self'; form-action 'none'; base-uri 'none'"
)


def csp(tenant: Tenant | None, embeddable: bool = False) -> str:
    if embeddable and tenant is not None:
        ancestors = " ".join(("'self'", *tenant.embed_origins))
    else:
        ancestors = "'none'"
    return f"{_BASE_CSP}; frame-ancestors {ancestors}"


def security_headers(tenant: Tenant | None, embeddable: bool = False) -> dict[str, str]:
    h = {
        "Content-Security-Policy": csp(tenant, embeddable),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
    }
    if not embeddable:
        h["X-Frame-Options"] = "DENY"
        h["Cross-Origin-Opener-Policy"] = "same-origin"
    return h

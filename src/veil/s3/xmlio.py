"""S3's XML bodies: responses built as ElementTree trees, requests parsed with defusedxml.

No XML is ever made by pasting strings: ``element`` builds a tree from nested Python values and
``render`` serialises it (ElementTree escapes every text). Request bodies (DeleteObjects,
CompleteMultipartUpload, CreateBucket) come from the network, so they are size-bounded by the
caller and parsed by defusedxml, which refuses DTDs, entities and external references; tags
are matched without their namespace, as S3 accepts bodies with or without it.
Imports from: veil.s3.errors, defusedxml (and the standard library).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Union

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from veil.s3.errors import S3Error

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
Value = Union[str, int, bool, None, "list[tuple[str, Value]]"]


def _text(v: str | int | bool) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _fill(parent: ET.Element, children: Iterable[tuple[str, Value]]) -> None:
    for tag, v in children:
        if v is None:
            continue
        el = ET.SubElement(parent, tag)
        if isinstance(v, list):
            _fill(el, v)
        else:
            el.text = _text(v)


def render(root: str, children: Iterable[tuple[str, Value]], namespace: bool = True) -> bytes:
    """``<?xml ...?><root xmlns=...>children</root>``; a None value leaves its element out."""
    el = ET.Element(root, {"xmlns": NS} if namespace else {})
    _fill(el, children)
    body: bytes = ET.tostring(el, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


XSI = "http://www.w3.org/2001/XMLSchema-instance"


def render_acl(owner: list[tuple[str, Value]]) -> bytes:
    """A private AccessControlPolicy: the owner has FULL_CONTROL (the Grantee needs xsi:type)."""
    el = ET.Element("AccessControlPolicy", {"xmlns": NS})
    _fill(el, [("Owner", owner)])
    grant = ET.SubElement(ET.SubElement(el, "AccessControlList"), "Grant")
    grantee = ET.SubElement(grant, "Grantee", {"xmlns:xsi": XSI, "xsi:type": "CanonicalUser"})
    _fill(grantee, owner)
    ET.SubElement(grant, "Permission").text = "FULL_CONTROL"
    body: bytes = ET.tostring(el, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def error_body(code: str, message: str, resource: str | None, request_id: str, **extra: str) -> bytes:
    kids: list[tuple[str, Value]] = [("Code", code), ("Message", message)]
    kids += [(k, v) for k, v in extra.items()]
    kids += [("Resource", resource), ("RequestId", request_id)]
    return render("Error", kids, namespace=False)


def local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse(body: bytes, root: str) -> ET.Element:
    """The document's root element, which must be ``root``; MalformedXML otherwise."""
    try:
        el = SafeET.fromstring(body)
    except (ET.ParseError, DefusedXmlException, ValueError):
        raise S3Error("MalformedXML", "the XML you provided was not well-formed or did not validate") from None
    if local(el.tag) != root:
        raise S3Error("MalformedXML", f"expected a <{root}> document")
    return el


def children(el: ET.Element, tag: str) -> list[ET.Element]:
    return [c for c in el if local(c.tag) == tag]


def child_text(el: ET.Element, tag: str) -> str | None:
    found = children(el, tag)
    if not found:
        return None
    return found[0].text or ""


def parse_delete(body: bytes) -> tuple[list[tuple[str, str | None]], bool]:
    """DeleteObjects: the (key, version id) pairs and whether the answer is quiet."""
    root = parse(body, "Delete")
    quiet = (child_text(root, "Quiet") or "false").strip().lower() == "true"
    objs = []
    for o in children(root, "Object"):
        key = child_text(o, "Key")
        if key is None:
            raise S3Error("MalformedXML", "every <Object> needs a <Key>")
        objs.append((key, child_text(o, "VersionId")))
    if not objs or len(objs) > 1000:
        raise S3Error("MalformedXML", "DeleteObjects takes 1 to 1000 objects")
    return objs, quiet


def parse_complete(body: bytes, max_parts: int = 10000) -> list[tuple[int, str]]:
    """CompleteMultipartUpload: the (part number, ETag) pairs in the order given."""
    root = parse(body, "CompleteMultipartUpload")
    parts = children(root, "Part")
    if len(parts) > max_parts:
        raise S3Error("InvalidArgument", f"a multipart upload has at most {max_parts} parts")
    out = []
    for p in parts:
        num, etag = child_text(p, "PartNumber"), child_text(p, "ETag")
        if num is None or etag is None or not num.strip().isdigit():
            raise S3Error("MalformedXML", "every <Part> needs a <PartNumber> and an <ETag>")
        out.append((int(num.strip()), etag.strip()))
    if not out:
        raise S3Error("MalformedXML", "CompleteMultipartUpload needs at least one part")
    return out

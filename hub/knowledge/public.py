"""The public page and Atom feed of CLEAR knowledge products ("a broader public", issue #19).

Both render only what ``views.public_products`` released over the open-feed channel. Text is
escaped, and the markdown body is shown as preformatted text: nothing a product's author
wrote becomes markup on the hub's page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any
from xml.sax.saxutils import escape as xml_escape

ATOM_MEDIA = "application/atom+xml"


def html_page(products: list[dict[str, Any]], *, base: str) -> str:
    entries = "\n".join(_html_entry(p) for p in products) or "<p>No public products yet.</p>"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>CWN knowledge products</title>"
        f'<link rel="alternate" type="{ATOM_MEDIA}" href="{escape(base)}/public/knowledge.atom">'
        "</head><body><h1>CWN knowledge products (TLP:CLEAR)</h1>\n"
        f"{entries}\n</body></html>\n"
    )


def _html_entry(p: dict[str, Any]) -> str:
    themes = ", ".join(p["themes"])
    return (
        f'<article id="{escape(p["uuid"])}"><h2>{escape(p["title"])}</h2>'
        f"<p>{escape(p['kind'])} · TLP:CLEAR · {escape(themes)}</p>"
        f"<pre>{escape(p['body'] or '')}</pre></article>"
    )


def atom_feed(products: list[dict[str, Any]], *, base: str) -> str:
    updated = max((p["published_at"] for p in products), default=datetime(2026, 1, 1, tzinfo=UTC))
    entries = "".join(_atom_entry(p, base=base) for p in products)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>CWN knowledge products (TLP:CLEAR)</title>"
        f"<id>{xml_escape(base)}/public/knowledge</id>"
        f'<link rel="self" href="{xml_escape(base)}/public/knowledge.atom"/>'
        f"<updated>{_stamp(updated)}</updated>"
        "<author><name>CWN hub</name></author>"
        f"{entries}</feed>\n"
    )


def _atom_entry(p: dict[str, Any], *, base: str) -> str:
    categories = "".join(f'<category term="{xml_escape(t)}"/>' for t in p["themes"])
    return (
        "<entry>"
        f"<title>{xml_escape(p['title'])}</title>"
        f"<id>urn:uuid:{xml_escape(p['uuid'])}</id>"
        f'<link href="{xml_escape(base)}/public/knowledge#{xml_escape(p["uuid"])}"/>'
        f"<updated>{_stamp(p['published_at'])}</updated>"
        f'<category term="{xml_escape(p["kind"])}"/>{categories}'
        f'<content type="text">{xml_escape(p["body"] or "")}</content>'
        "</entry>"
    )


def _stamp(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

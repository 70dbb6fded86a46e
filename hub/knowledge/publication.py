"""A product version as the hub event it is published as.

The event is the product's owner's, addressed to the community (CLEAR: to all communities, so
it may also go to open feeds and the public page), tagged with the product's TLP label, its
kind and themes as machine tags and ``cwn:knowledge-product``; the version is its one event
report (markdown, with the credits). REST, ``/misp`` (event reports) and TAXII (misp-stix:
the event a ``report``, the event report a ``note``) then release it like any other event.
"""

from __future__ import annotations

import time
from typing import Any

from hub.knowledge import taxonomy
from hub.models import Event, KnowledgeProduct, KnowledgeVersion


def tags(version: KnowledgeVersion) -> list[str]:
    return [
        f"tlp:{version.tlp}",
        taxonomy.PRODUCT_TAG,
        taxonomy.tag("kind", version.kind),
        *(taxonomy.tag("theme", t) for t in version.themes),
    ]


def content(version: KnowledgeVersion, credits: list[str]) -> str:
    """The report's markdown: the body, then the sources as recipients may read them."""
    lines = [version.body.rstrip(), "", "## Sources", ""]
    lines += [f"- {c}" for c in sorted(credits)]
    lines += ["", f"_Knowledge product, version {version.version}; TLP:{version.tlp.upper()}._"]
    return "\n".join(lines) + "\n"


def event_of(
    product: KnowledgeProduct,
    version: KnowledgeVersion,
    credits: list[str],
    *,
    existing: Event | None,
) -> dict[str, Any]:
    stamp = int(time.time())
    if existing is not None:
        stamp = max(stamp, existing.timestamp + 1)  # MISP's rule keeps only newer edits
    return {
        "Event": {
            "uuid": product.event_uuid,
            "info": version.title,
            "date": time.strftime("%Y-%m-%d", time.gmtime(stamp)),
            "distribution": "3" if version.tlp == "clear" else "1",
            "threat_level_id": "4",
            "analysis": "2",
            "published": True,
            "timestamp": str(stamp),
            "Tag": [{"name": name} for name in tags(version)],
            "Attribute": [],
            "EventReport": [
                {
                    "uuid": product.report_uuid,
                    "name": version.title,
                    "content": content(version, credits),
                    "distribution": "5",
                    "timestamp": str(stamp),
                }
            ],
        }
    }

"""``/misp``: the MISP server-sync API and the PyMISP calls partners use (reference/misp-sync.md).

Paths keep MISP's syntax: named parameters as ``key:value`` path segments, arrays as
``key[]:v``, an optional ``.json`` suffix, and both spellings of camelCase controllers
(CakePHP routes ``shadowAttributes`` and ``shadow_attributes`` alike). Every route needs a
partner or sync key; the key's organisation decides what it sees.

One module per group of calls (``capability``, ``sync``, ``attributes``, ``objects``,
``reports``, ``tags``, ``publication``, ``declined``), each with its own router; ``routes``
holds what they share. This package assembles them into one ``router``, in the order the
routes are tried: a more specific path before a parametrised one (``/events/index`` before
``/events/{eventId}``), and last the catch-all for every path no route serves.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from hub.errors import NotFound
from hub.misp_compat.endpoints import (
    attributes,
    capability,
    declined,
    objects,
    publication,
    reports,
    sync,
    tags,
)
from hub.misp_compat.endpoints.routes import ALL_METHODS, MispRouter, NotServedRoute
from hub.misp_compat.errors import misp_url
from hub.routing import PartnerKey

router = APIRouter()
for _part in (capability, sync, attributes, objects, reports, tags, publication, declined):
    router.include_router(_part.router)


def not_served(request: Request, who: PartnerKey) -> Response:
    """Any other MISP path: a key is still required, then MISP's 404."""
    raise NotFound(f"{misp_url(request)} is not part of the hub's MISP API")


_not_served = MispRouter()
for _method in ALL_METHODS:  # last: only what no route above serves reaches it
    _not_served.add_api_route(
        "/{anything:path}",
        not_served,
        methods=[_method],
        name="not_served",
        route_class_override=NotServedRoute,
        include_in_schema=False,  # not an operation: the answer for paths that are none
    )
router.include_router(_not_served)

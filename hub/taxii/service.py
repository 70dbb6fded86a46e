"""TAXII 2.1 resources for one caller: discovery, the API root, audience-scoped collections,
pages of objects (each page a release through ``hub.sharing``). Add Objects and its status
resources: ``hub.taxii.submissions``.

Collections are views, not stores (reference: tlp-stix-taxii §5.3): ``all`` (everything the
caller may see), one per TLP label up to the caller's TAXII limit (``tlp-green`` …; RED never
goes over TAXII), and ``sector-<sector>`` for each sector the caller belongs to (what sources
in that sector shared). Each is filtered at query time by the caller's clearance.
"""

from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

import tlp
from hub import cursors
from hub.auth.principal import Principal
from hub.errors import BadRequest, NotFound
from hub.intel.stix_shape import timestamp
from hub.models import StixObject
from hub.sharing.recipients import Recipient
from hub.sharing.stix import StixDecider, StixPage, record_stix_page
from hub.taxii import repository
from hub.taxii.protocol import STIX_MEDIA, TAXII_MEDIA
from hub.taxii.query import Filters
from hub.vocabulary import PartnerStatus, Sector

API_ROOT = "cwn"
_NAMESPACE = uuid_mod.UUID("5b0f3a4e-51f4-4c2e-9a57-7c2b1f0e4a21")
_LABELS = (tlp.Tlp.CLEAR, tlp.Tlp.GREEN, tlp.Tlp.AMBER, tlp.Tlp.AMBER_STRICT)
_SECTORS = frozenset(s.value for s in Sector)


# --- discovery and API root (TAXII 2.1 §4.1, §4.2) ---------------------------------------------


def discovery(*, base_url: str, org_name: str) -> dict[str, Any]:
    root = f"{base_url}/taxii2/{API_ROOT}/"
    return {
        "title": f"CWN hub ({org_name})",
        "description": (
            "Threat information of the Dutch cyber-resilience network, filtered for the caller "
            "under TLP 2.0; every object carries its TLP marking."
        ),
        "contact": org_name,
        "default": root,
        "api_roots": [root],
    }


def api_root(*, max_content_length: int) -> dict[str, Any]:
    return {
        "title": "CWN shared information",
        "description": "Audience-scoped collections of STIX 2.1 objects.",
        "versions": [TAXII_MEDIA],
        "max_content_length": max_content_length,
    }


# --- collections (TAXII 2.1 §5.1, §5.2) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Collection:
    alias: str
    title: str
    description: str
    label: tlp.Tlp | None = None
    sector: str | None = None

    @property
    def id(self) -> str:
        return str(uuid_mod.uuid5(_NAMESPACE, self.alias))


ALL = Collection(
    "all", "Everything you may see", "Every object shared with your organisation over TAXII."
)


def _label_collection(label: tlp.Tlp) -> Collection:
    return Collection(
        "tlp-" + label.value.replace("+", "-"),
        f"{label.display} objects",
        f"Objects marked {label.display} that your organisation may see.",
        label=label,
    )


def _sector_collection(sector: str) -> Collection:
    return Collection(
        f"sector-{sector}",
        f"Sector {sector}",
        f"Objects from sources in the {sector} sector that your organisation may see.",
        sector=sector,
    )


def audience(principal: Principal, policy: tlp.Policy) -> tlp.Audience:
    return tlp.audience_for(Recipient.of_principal(principal).tlp, tlp.Channel.TAXII, policy)


def _label_collections(principal: Principal, policy: tlp.Policy) -> list[Collection]:
    """A collection per label the caller may receive from others (its own items of any
    label are in ``all``)."""
    top = audience(principal, policy).max_label
    return [_label_collection(x) for x in _LABELS if top is not None and x <= top]


def collections_for(
    session: Session, *, principal: Principal, policy: tlp.Policy
) -> list[Collection]:
    sectors = repository.sectors_of(session, principal.partner_id)
    return [
        ALL,
        *_label_collections(principal, policy),
        *(_sector_collection(s) for s in sectors),
    ]


def find_collection(
    session: Session,
    *,
    principal: Principal,
    policy: tlp.Policy,
    ident: str,
    check_sector: bool = True,
) -> Collection:
    """The collection by id or alias; a sector collection only for the sector's members.

    With ``check_sector=False`` membership is left to the page query (one statement fewer).
    """
    key = ident.lower()
    for candidate in [ALL, *_label_collections(principal, policy)]:
        if key in (candidate.id, candidate.alias):
            return candidate
    sector = key.removeprefix("sector-") if key.startswith("sector-") else None
    if sector is None:
        sector = next((s for s in _SECTORS if _sector_collection(s).id == key), None)
    if sector in _SECTORS:
        if not check_sector or repository.is_in_sector(session, principal.partner_id, sector):
            return _sector_collection(sector)
    raise NotFound(f"no collection {ident}")


def can_write(principal: Principal, collection: Collection) -> bool:
    return (
        collection is ALL
        and principal.partner_status == PartnerStatus.ACTIVE.value
        and principal.tlp_accepted
    )


def collection_resource(principal: Principal, collection: Collection) -> dict[str, Any]:
    return {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "alias": collection.alias,
        "can_read": True,
        "can_write": can_write(principal, collection),
        "media_types": [STIX_MEDIA],
    }


# --- pages: objects, manifest, one object, versions (TAXII 2.1 §5.3-5.8) ------------------------


@dataclass(slots=True)
class Page:
    release: StixPage
    more: bool
    next: str | None

    @property
    def headers(self) -> dict[str, str]:
        out = {"X-Hub-TLP": self.release.obligation.label.display}
        if self.release.audit_seq is not None:
            out["X-Hub-Audit-Seq"] = str(self.release.audit_seq)
        if self.release.objects:
            out["X-TAXII-Date-Added-First"] = timestamp(self.release.objects[0][0].date_added)
            out["X-TAXII-Date-Added-Last"] = timestamp(self.release.objects[-1][0].date_added)
        return out

    @property
    def empty(self) -> bool:
        return not self.release.objects


def page(
    session: Session,
    *,
    principal: Principal,
    policy: tlp.Policy,
    secret: str,
    collection: Collection,
    endpoint: str,
    filters: Filters,
    limit: int,
    next_token: str | None,
    stix_id: str | None = None,
    with_definitions: bool = False,
) -> Page:
    """One page over what the caller receives: candidates in ``date_added`` order, each
    decided (``hub.sharing.stix``), read on until the page is full and one more object
    proves a next page; one audit entry. ``next`` continues after the last object served.
    A sector collection whose page comes back empty checks membership then, so that a
    non-member gets 404, not nothing."""
    scope_name = f"{collection.id}/{endpoint}/{stix_id or ''}"
    query = filters.fingerprint(scope_name)
    start = _start(secret, next_token, caller=principal.scope, query=query)
    decider = StixDecider(principal, tlp.Channel.TAXII, policy)
    collected, withheld, seen_any = _collect(
        session,
        decider,
        aud=audience(principal, policy),
        scope=_scope(collection, principal),
        filters=filters,
        stix_id=stix_id,
        start=start,
        limit=limit,
        org_uuid=principal.partner_uuid,
    )
    if not seen_any and collection.sector is not None:
        if not repository.is_in_sector(session, principal.partner_id, collection.sector):
            raise NotFound(f"no collection {collection.alias}")
    keep = min(limit, len(collected))
    if with_definitions:
        # The TLP 2.0 marking definitions travel in the envelope and count towards `limit`
        # (taxii2-client adopts the size of the first page as its page size).
        while keep > 1 and keep + len({row.tlp_rank for row, _ in collected[:keep]}) > limit:
            keep -= 1
    more = len(collected) > keep
    served = collected[:keep]
    release = record_stix_page(
        session,
        decider,
        delivered=served,
        withheld=withheld,
        what=f"taxii:{collection.alias}/{endpoint}" + (f"/{stix_id}" if stix_id else ""),
    )
    token = None
    if more and served:
        last = served[-1][0]
        token = cursors.seal(
            secret,
            caller=principal.scope,
            query=query,
            position=[last.date_added.isoformat(), last.id],
        )
    return Page(release, more, token)


def _start(
    secret: str, next_token: str | None, *, caller: str, query: str
) -> tuple[datetime, int] | None:
    """Where a page continues: the (date_added, id) a ``next`` token sealed for this caller
    and this query, or None for the first page."""
    if not next_token:
        return None
    pos = cursors.open_(
        secret, next_token, caller=caller, query=query, field="next", error=BadRequest
    )
    try:
        return (datetime.fromisoformat(str(pos[0])), int(pos[1]))
    except (ValueError, TypeError, IndexError):
        raise BadRequest("next: not a token this server handed out", field="next") from None


def _scope(collection: Collection, principal: Principal) -> Any:
    """The collection's condition on stored objects: one label, one sector's members, or
    none (the whole collection)."""
    if collection.label is not None:
        return StixObject.tlp_rank == collection.label.rank
    if collection.sector is not None:
        return repository.in_sector(collection.sector, principal.partner_id, principal.partner_uuid)
    return None


def _collect(
    session: Session,
    decider: StixDecider,
    *,
    aud: tlp.Audience,
    scope: Any,
    filters: Filters,
    stix_id: str | None,
    start: tuple[datetime, int] | None,
    limit: int,
    org_uuid: str,
) -> tuple[list[tuple[Any, bytes]], list[tuple[Any, str]], bool]:
    """Candidates in ``date_added`` order, each decided, read in growing chunks until
    ``limit`` + 1 objects are released or none is left: (released with their documents,
    withheld with their reasons, whether any candidate was seen)."""
    collected: list[tuple[Any, bytes]] = []
    withheld: list[tuple[Any, str]] = []
    after, chunk, seen_any = start, limit + 1, False
    while True:
        rows = session.execute(
            repository.page(
                audience=aud,
                scope=scope,
                filters=filters,
                stix_id=stix_id,
                after=after,
                limit=chunk,
                org_uuid=org_uuid,
            )
        ).all()
        seen_any = seen_any or bool(rows)
        for row in rows:
            doc, reason = decider(row)
            if doc is None:
                withheld.append((row, reason))
            else:
                collected.append((row, doc))
                if len(collected) > limit:
                    break
        if len(collected) > limit or len(rows) < chunk:
            return collected, withheld, seen_any
        after = (rows[-1].date_added, rows[-1].id)
        chunk = min(chunk * 2, 1000)


def envelope(result: Page) -> bytes:
    """The envelope (§3.7) as bytes: stored objects are sent as stored, after the TLP 2.0
    marking definitions they reference (STIX 2.1 does not predefine those)."""
    parts = [b'{"more":', b"true" if result.more else b"false"]
    if result.next:
        parts += [b',"next":', orjson.dumps(result.next)]
    if result.release.objects:
        definitions = [
            orjson.dumps(tlp.tlp2_marking_definition(x)) for x in sorted(result.release.labels)
        ]
        parts += [
            b',"objects":[',
            b",".join(definitions + [doc for _, doc in result.release.objects]),
            b"]",
        ]
    parts.append(b"}")
    return b"".join(parts)


def manifest(result: Page) -> dict[str, Any]:
    out: dict[str, Any] = {"more": result.more}
    if result.next:
        out["next"] = result.next
    if result.release.objects:
        out["objects"] = [
            {
                "id": row.stix_id,
                "date_added": timestamp(row.date_added),
                "version": row.version,
                "media_type": STIX_MEDIA,
            }
            for row, _ in result.release.objects
        ]
    return out


def versions(result: Page) -> dict[str, Any]:
    out: dict[str, Any] = {"more": result.more}
    if result.next:
        out["next"] = result.next
    if result.release.objects:
        out["versions"] = [row.version for row, _ in result.release.objects]
    return out

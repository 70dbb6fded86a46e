"""What the MISP endpoints do, on the store: index, view, push, search, sightings.

Everything that leaves goes through ``hub.sharing`` (decided and audited there), over the
``misp-sync`` channel whatever the client (a partner's MISP or PyMISP): the SQL below only
narrows what the release path is asked about. What comes in goes through
``hub.intel.service.ingest_events``; the pusher must be the event's creator.
"""

from __future__ import annotations

import re
import time
import uuid as uuid_mod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, false, func, not_, or_, select
from sqlalchemy.orm import Session, load_only

import tlp
from hub.audit import service as audit
from hub.auth.principal import Principal
from hub.errors import InvalidField, NotFound
from hub.intel import repository
from hub.intel.service import Outcome, ingest_events, lock_event_uuids
from hub.misp_compat import shapes
from hub.misp_compat.errors import NOT_NEWER, SaveRefused
from hub.misp_compat.params import Terms, limit_page, row_id, since, terms, truthy
from hub.models import Attribute, Event, Partner, Sighting
from hub.notifications import service as notifications
from hub.sharing import service as sharing

CHANNEL = tlp.Channel.MISP_SYNC
_INDEX_COLUMNS = (
    Event.id,
    Event.uuid,
    Event.info,
    Event.date,
    Event.published,
    Event.timestamp,
    Event.publish_timestamp,
    Event.distribution,
    Event.sg_members,
    Event.orgc_uuid,
    Event.orgc_name,
    Event.source_partner_id,
    Event.tlp_rank,
    Event.min_rank,
    Event.chr,
    Event.tags,
    Event.attribute_count,
    Event.version,
)
_PRODUCER = "misp-galaxy:producer="


def audience(principal: Principal, policy: tlp.Policy) -> tlp.Audience:
    return tlp.audience_for(sharing.recipient_of(principal), CHANNEL, policy)


def hub_org_uuid(session: Session) -> str | None:
    return session.scalar(select(Partner.uuid).where(Partner.is_hub_org.is_(True)))


def _is_uuid(text: str) -> bool:
    try:
        uuid_mod.UUID(text)
    except ValueError:
        return False
    return True


def find_event(session: Session, ident: str) -> Event | None:
    """An event by uuid or by the numeric id the hub hands out (MISP ids are local)."""
    ident = ident.strip().lower()
    if ident.isdigit():
        number = row_id(ident)
        return session.get(Event, number) if number is not None else None
    if _is_uuid(ident):
        return repository.by_uuid(session, str(uuid_mod.UUID(ident)))
    return None


# --- event filters (EventsController.php:246-520) --------------------------------------------


def _like_json(name: str) -> str:
    """A LIKE pattern for one tag name inside the ``tags`` JSON list, lower-cased."""
    quoted = orjson.dumps(name.lower()).decode()
    escaped = quoted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _tag_clause(name: str) -> ColumnElement[bool]:
    """One tag: a TLP tag matches the event's effective label (what the caller receives),
    any other tag its name, case-insensitively (Tag.php:310-355)."""
    try:
        label = tlp.parse_tag(name).label
    except tlp.TLPError:
        label = None
    if label is not None:
        return Event.tlp_rank == label.rank
    if name.isdigit():  # a tag id: the hub has none to match
        return false()
    return func.lower(Event.tags).like(_like_json(name), escape="\\")


def _org_clause(values: list[str]) -> ColumnElement[bool]:
    uuids = [v.lower() for v in values if _is_uuid(v)]
    names = [v.casefold() for v in values if not _is_uuid(v)]
    return or_(Event.orgc_uuid.in_(uuids), func.lower(Event.orgc_name).in_(names))


def _event_ids_clause(values: list[str]) -> ColumnElement[bool]:
    ids = [n for n in map(row_id, values) if n is not None]
    uuids = [v.lower() for v in values if _is_uuid(v)]
    return or_(Event.id.in_(ids), Event.uuid.in_(uuids))


def _ints(values: list[str], name: str) -> list[int]:
    if not all(v.strip().isascii() and v.strip().isdigit() and len(v) <= 10 for v in values):
        raise InvalidField(f"{name}: expected numbers", field=name)
    return [int(v) for v in values]


def event_filters(stmt: Select[Any], body: dict[str, Any], *, principal: Principal) -> Select[Any]:
    """Apply MISP's event filters (pull rules, ``search_index``, restSearch); unknown keys
    are ignored, as MISP ignores them."""
    tags = terms(body.get("tags", body.get("tag")))
    if tags.include:
        stmt = stmt.where(or_(*[_tag_clause(t) for t in tags.include]))
    for name in tags.exclude:
        stmt = stmt.where(not_(_tag_clause(name)))
    orgs = terms(body.get("org"))
    # The creator of a TLP:EX:CHR event is not disclosed, so it cannot be filtered on either.
    attributable = or_(Event.chr.is_(False), Event.orgc_uuid == principal.partner_uuid)
    if orgs.include:
        stmt = stmt.where(_org_clause(orgs.include), attributable)
    if orgs.exclude:
        stmt = stmt.where(or_(not_(_org_clause(orgs.exclude)), not_(attributable)))
    ids = terms(body.get("eventid", body.get("uuid")))
    if ids.include:
        stmt = stmt.where(_event_ids_clause(ids.include))
    if ids.exclude:
        stmt = stmt.where(not_(_event_ids_clause(ids.exclude)))
    dist = terms(body.get("distribution"))
    if dist.include:
        stmt = stmt.where(Event.distribution.in_(_ints(dist.include, "distribution")))
    if dist.exclude:
        stmt = stmt.where(Event.distribution.not_in(_ints(dist.exclude, "distribution")))
    published = body.get("published")
    if published not in (None, "") and not (isinstance(published, list) and len(published) > 1):
        stmt = stmt.where(Event.published.is_(truthy(published)))
    for key, column in (
        ("timestamp", Event.timestamp),
        ("publish_timestamp", Event.publish_timestamp),
        ("last", Event.publish_timestamp),
    ):
        low, high = since(body.get(key), name=key)
        if low is not None:
            stmt = stmt.where(column >= low)
        if high is not None:
            stmt = stmt.where(column <= high)
    info = body.get("eventinfo") or body.get("info")
    if info:
        pattern = str(info).lower()
        stmt = stmt.where(
            func.lower(Event.info).like(pattern if "%" in pattern else f"%{pattern}%")
        )
    for key, op in (
        ("datefrom", "ge"),
        ("date_from", "ge"),
        ("dateuntil", "le"),
        ("date_to", "le"),
    ):
        if body.get(key):
            value = str(body[key])[:10]
            stmt = stmt.where(Event.date >= value if op == "ge" else Event.date <= value)
    return stmt


def _sharing_group_ok(session: Session, rows: list[Event], groups: Terms) -> list[Event]:
    """The ``sharinggroup`` filter: the group is in each event's stored document only."""
    if not groups:
        return rows
    wanted = {g.lower() for g in groups.include}
    unwanted = {g.lower() for g in groups.exclude}
    ids = [r.id for r in rows if r.distribution == 4]
    found: dict[int, set[str]] = {}
    for start in range(0, len(ids), 900):
        for event_id, doc in session.execute(
            select(Event.id, Event.doc).where(Event.id.in_(ids[start : start + 900]))
        ):
            group = orjson.loads(doc).get("SharingGroup") or {}
            found[event_id] = {
                str(group.get(k)).lower() for k in ("uuid", "id", "name") if group.get(k)
            }
    out = []
    for row in rows:
        keys = found.get(row.id, set())
        if wanted and not keys & wanted:
            continue
        if keys & unwanted:
            continue
        out.append(row)
    return out


def _candidates(
    session: Session, *, principal: Principal, policy: tlp.Policy, body: dict[str, Any]
) -> list[Event]:
    stmt = (
        select(Event)
        .options(load_only(*_INDEX_COLUMNS))
        .where(repository.readable(audience(principal, policy)))
    )
    stmt = event_filters(stmt, body, principal=principal)
    rows = list(session.scalars(stmt.order_by(Event.timestamp.desc(), Event.id.desc())))
    return _sharing_group_ok(session, rows, terms(body.get("sharinggroup")))


# --- index -----------------------------------------------------------------------------------


@dataclass(slots=True)
class IndexPage:
    rows: list[dict[str, Any]]
    total: int


def _sighting_stamps(session: Session, ids: Sequence[int]) -> dict[int, int]:
    if not ids:
        return {}
    return dict(
        session.execute(
            select(Sighting.event_id, func.max(Sighting.date_sighting))
            .where(Sighting.event_id.in_(ids))
            .group_by(Sighting.event_id)
        ).all()  # type: ignore[arg-type]
    )


def _index_tags(row: Event, *, strip: bool) -> list[dict[str, Any]]:
    names = [
        n
        for n in orjson.loads(row.tags)
        if not sharing.is_tlp_tag({"name": n}) and not (strip and n.startswith(_PRODUCER))
    ]
    names.append(sharing.label_of(row.tlp_rank).tag)
    return [{"name": n, "local": False} for n in names]


def index(
    session: Session,
    *,
    principal: Principal,
    policy: tlp.Policy,
    body: dict[str, Any],
) -> IndexPage:
    """``/events/index``: the events the caller may receive, newest first (the pulling MISP
    reverses the list, Server.php:281), one audited page."""
    minimal = truthy(body.get("minimal", False))
    rows = _candidates(session, principal=principal, policy=policy, body=body)
    limit, page = limit_page(body, default=None)
    total = len(rows)
    if limit is not None:
        rows = rows[(page - 1) * limit : page * limit]
    delivery = sharing.release_index(
        session, principal=principal, events=rows, channel=CHANNEL, policy=policy
    )
    stamps = _sighting_stamps(session, [e.id for e in delivery.items])
    hub_uuid = hub_org_uuid(session) if any(e.chr for e in delivery.items) else None
    out = []
    for row in delivery.items:
        hidden = row.chr and row.orgc_uuid != principal.partner_uuid
        orgc = {"uuid": hub_uuid or "", "name": "(not disclosed: TLP:EX:CHR)"} if hidden else None
        item = shapes.index_row(
            row, minimal=minimal, sighting_timestamp=stamps.get(row.id, 0), chr_orgc=orgc
        )
        if not minimal:
            item["Tag"] = _index_tags(row, strip=hidden)
        out.append(item)
    return IndexPage(out, total - len(rows) + len(out))


# --- view ------------------------------------------------------------------------------------


def visible(session: Session, *, principal: Principal, policy: tlp.Policy, row: Event) -> bool:
    """Whether the caller may know the event (HEAD): exactly when the view would deliver it
    (the same release decision, audited the same way), so HEAD cannot tell an event apart
    that GET would refuse."""
    return (
        view(session, principal=principal, policy=policy, row=row, include_deleted=False)
        is not None
    )


def view(
    session: Session,
    *,
    principal: Principal,
    policy: tlp.Policy,
    row: Event,
    include_deleted: bool,
) -> dict[str, Any] | None:
    """The event as the caller may receive it (bare, read-only), or None; audited either way."""
    delivery = sharing.release_event(
        session,
        principal=principal,
        event=row,
        channel=CHANNEL,
        policy=policy,
        include_deleted=include_deleted,
    )
    if delivery.event is None:
        return None
    return delivery.event["Event"]  # type: ignore[no-any-return]


# --- push ------------------------------------------------------------------------------------


@dataclass(slots=True)
class Pushed:
    """A stored push: the event row (None when held in quarantine) and what ingest said."""

    row: Event | None
    outcome: Outcome


class ExistsElsewhere(Exception):
    """``/events/add`` of a uuid the caller already has here: MISP answers 404 with
    ``Location`` (EventsController.php:2222-2227) and the pusher retries as an edit."""

    def __init__(self, row: Event) -> None:
        self.row = row


def unwrap_event(doc: Any) -> dict[str, Any]:
    """``{"Event": …}``, a bare event, ``{"response": …}`` or ``{"request": …}``
    (EventsController.php:2122-2131)."""
    for key in ("response", "request"):
        if isinstance(doc, dict) and key in doc and "info" not in doc:
            doc = doc[key]
    if isinstance(doc, list) and len(doc) == 1:
        doc = doc[0]
    if isinstance(doc, dict) and isinstance(doc.get("Event"), dict):
        doc = doc["Event"]
    if not isinstance(doc, dict):
        raise InvalidField("the body must be one MISP event", field="Event")
    return dict(doc)


def _check_creator(event: dict[str, Any], source: Partner, *, name: str) -> None:
    """A partner pushes its own events. Relaying another organisation's events would need an
    explicit permission on the key, and the hub has no such permission yet."""
    orgc = event.get("Orgc")
    if not isinstance(orgc, dict):
        return
    org_uuid = str(orgc.get("uuid") or "").lower()
    org_name = str(orgc.get("name") or "")
    if org_uuid and org_uuid == source.uuid:
        return
    if not org_uuid and (not org_name or org_name.casefold() == source.name.casefold()):
        return
    raise SaveRefused(
        f"Event could not be saved: its creator organisation ({org_name or '?'}, "
        f"{org_uuid or 'no uuid'}) is not this key's organisation ({source.name}, "
        f"{source.uuid}). Relaying another organisation's events needs a relay permission "
        "on the key; the hub does not grant one.",
        name=name,
    )


def push(
    session: Session,
    *,
    principal: Principal,
    policy: tlp.Policy,
    source: Partner,
    payload: Any,
    target: str | None,
) -> Pushed:
    """``/events/add`` (``target`` None) or ``/events/edit/{target}``, with MISP's rules:
    the creator must be the caller, an edit must be newer (Event.php:4115-4150), an event
    without a timestamp gets now (ingest does that). ``source`` is the caller's organisation,
    as ``hub.intel.endpoints.submitting_partner`` checks it (active, TLP rules accepted)."""
    name = "Could not edit Event" if target is not None else "Could not add Event"
    event = unwrap_event(payload)
    _check_creator(event, source, name=name)
    lock_event_uuids(session, [event["uuid"]] if event.get("uuid") else [])  # concurrent pushes
    if target is not None:
        row = find_event(session, target)
        if row is None:
            raise NotFound(f"Invalid event {target}")
        given = str(event.get("uuid") or row.uuid).lower()
        if given != row.uuid:
            raise SaveRefused(
                f"Event could not be saved: the body's uuid {given} is not event {target}",
                name=name,
            )
        event["uuid"] = row.uuid
    else:
        row = find_event(session, str(event["uuid"])) if event.get("uuid") else None
        if row is not None and row.source_partner_id == source.id:
            raise ExistsElsewhere(row)
        if row is None:
            # MISP's defaults for a new event (EventsController.php:2157-2169).
            event.setdefault("date", datetime.now(UTC).date().isoformat())
            event.setdefault("threat_level_id", "4")
            event.setdefault("analysis", "0")
    if row is not None and row.source_partner_id != source.id:
        raise SaveRefused(
            "Event could not be saved: this event belongs to another organisation; only its "
            "creator may change it.",
            name=name,
        )
    outcome = ingest_events(
        session,
        payloads=[event],
        source=source,
        actor=principal.actor,
        channel=CHANNEL.value,
        policy=policy,
    )[0]
    if outcome.status == "unchanged":
        raise SaveRefused(NOT_NEWER, name=name)
    stored = repository.by_uuid(session, outcome.uuid) if outcome.status != "quarantined" else None
    return Pushed(stored, outcome)


def metadata(row: Event) -> dict[str, Any]:
    """The answer to a push with ``metadata:1``: the pusher reads ``Event.id`` (Event.php:932)."""
    return {
        "Event": {
            "id": str(row.id),
            "uuid": row.uuid,
            "info": row.info,
            "date": row.date or "",
            "timestamp": str(row.timestamp),
            "publish_timestamp": str(row.publish_timestamp or 0),
            "published": bool(row.published),
            "distribution": str(row.distribution),
            "attribute_count": str(row.attribute_count),
            "locked": True,
            "protected": False,
            "Orgc": {"uuid": row.orgc_uuid, "name": row.orgc_name},
        }
    }


def uuids_to_push(session: Session, *, principal: Principal, body: Any) -> list[str]:
    """``/events/filterEventIdsForPush``: the uuids the hub wants. Dropped: events it has at the
    same or a newer timestamp, and events of another organisation, which the caller may not
    change (MISP drops events not ``locked``, EventsController.php:4275-4302)."""
    if not isinstance(body, list):
        raise InvalidField("the body must be a list of {Event: {uuid, timestamp}}", field="Event")
    offered: dict[str, int] = {}
    for item in body:
        inner = item.get("Event", item) if isinstance(item, dict) else None
        if not isinstance(inner, dict) or not inner.get("uuid"):
            continue
        uuid = str(inner["uuid"]).lower()
        try:
            offered[uuid] = int(inner.get("timestamp") or 0)
        except (TypeError, ValueError):
            offered[uuid] = 0
    keys = list(offered)
    known: dict[str, tuple[int, int]] = {}
    for start in range(0, len(keys), 900):
        for uuid, stamp, owner in session.execute(
            select(Event.uuid, Event.timestamp, Event.source_partner_id).where(
                Event.uuid.in_(keys[start : start + 900])
            )
        ):
            known[uuid] = (stamp, owner)
    wanted = []
    for uuid, stamp in offered.items():
        have = known.get(uuid)
        if have is None or (have[1] == principal.partner_id and stamp > have[0]):
            wanted.append(uuid)
    return wanted


# --- restSearch ------------------------------------------------------------------------------


def _attribute_cap(aud: tlp.Audience) -> ColumnElement[bool]:
    """Attributes whose label the audience may receive at all (its own up to ``own_max``)."""
    cap = aud.max_label.rank if aud.max_label else -1
    if aud.own_max is not None and aud.org_uuid:
        own = and_(Event.orgc_uuid == aud.org_uuid, Attribute.tlp_rank <= aud.own_max.rank)
        return or_(own, Attribute.tlp_rank <= cap)
    return Attribute.tlp_rank <= cap


def _attribute_exists(body: dict[str, Any], aud: tlp.Audience) -> ColumnElement[bool] | None:
    """Events restSearch's attribute filters, as a pre-filter: the event has a live attribute
    that matches and whose label the caller may receive. Only a pre-filter: whether the
    caller receives the matching attribute is decided on the released event
    (``_delivered_match``), so a withheld attribute never selects an event."""
    clauses = _attribute_clauses(body)
    if not clauses:
        return None
    return (
        select(Attribute.id)
        .where(
            Attribute.event_id == Event.id,
            Attribute.deleted.is_(False),
            _attribute_cap(aud),
            *clauses,
        )
        .exists()
    )


def _like(pattern: str) -> re.Pattern[str]:
    """SQL LIKE (``%``, ``_``) as a regex, case-insensitive as MISP's MySQL compares."""
    parts = ("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _attribute_matcher(body: dict[str, Any]) -> Callable[[dict[str, Any]], bool] | None:
    """``_attribute_clauses`` on a released attribute (a MISP JSON dict)."""
    values = terms(body.get("value"))
    types = {k: terms(body.get(k)) for k in ("type", "category")}
    to_ids = body.get("to_ids")
    if not (values or any(types.values()) or to_ids not in (None, "", [])):
        return None

    def value_is(value: str, v: str) -> bool:
        return bool(_like(v).fullmatch(value)) if "%" in v else value == v

    def match(a: dict[str, Any]) -> bool:
        value = str(a.get("value") or "")
        if values.include and not any(value_is(value, v) for v in values.include):
            return False
        if any(value_is(value, v) for v in values.exclude):
            return False
        for key, chosen in types.items():
            got = str(a.get(key) or "")
            if chosen.include and got not in chosen.include:
                return False
            if got in chosen.exclude:
                return False
        return to_ids in (None, "", []) or truthy(a.get("to_ids")) == truthy(to_ids)

    return match


def _delivered_match(event: dict[str, Any], match: Callable[[dict[str, Any]], bool]) -> bool:
    """Whether a live attribute of the released (filtered) event matches."""
    attrs = list(event.get("Attribute") or [])
    for item in event.get("Object") or []:
        if not truthy(item.get("deleted")):
            attrs += item.get("Attribute") or []
    return any(match(a) for a in attrs if not truthy(a.get("deleted")))


def _attribute_clauses(body: dict[str, Any]) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    values = terms(body.get("value"))

    def value_clause(v: str) -> ColumnElement[bool]:
        if "%" in v:
            return Attribute.value.like(v)
        return and_(Attribute.value_key == v[:200], Attribute.value == v)

    if values.include:
        out.append(or_(*[value_clause(v) for v in values.include]))
    for v in values.exclude:
        out.append(not_(value_clause(v)))
    for key, column in (("type", Attribute.type), ("category", Attribute.category)):
        chosen = terms(body.get(key))
        if chosen.include:
            out.append(column.in_(chosen.include))
        if chosen.exclude:
            out.append(column.not_in(chosen.exclude))
    if body.get("to_ids") not in (None, "", []):
        out.append(Attribute.to_ids.is_(truthy(body["to_ids"])))
    return out


def search_events(
    session: Session, *, principal: Principal, policy: tlp.Policy, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """``/events/restSearch`` (json): matching events, each released (and audited) whole."""
    if body.get("returnFormat", "json") not in ("json", None):
        raise InvalidField("only returnFormat json is served here", field="returnFormat")
    scoped = dict(body)
    exists = _attribute_exists(scoped, audience(principal, policy))
    match = _attribute_matcher(scoped)
    rows = _candidates(session, principal=principal, policy=policy, body=scoped)
    if exists is not None:
        ids = [r.id for r in rows]
        matching: set[int] = set()
        for start in range(0, len(ids), 900):
            matching.update(
                session.scalars(
                    select(Event.id).where(Event.id.in_(ids[start : start + 900]), exists)
                )
            )
        rows = [r for r in rows if r.id in matching]
    limit, page = limit_page(body, default=None)
    only_metadata = truthy(body.get("metadata", False))
    include_deleted = truthy(body.get("deleted", False)) or truthy(
        body.get("includeDeleted", False)
    )
    if match is None:
        if limit is not None:
            rows = rows[(page - 1) * limit : page * limit]
        skip, wanted = 0, None
    else:
        # Paged over what matches in the released events: an event selected only by an
        # attribute the caller does not receive must not even take a place on a page.
        skip = (page - 1) * limit if limit is not None else 0
        wanted = limit
    out = []
    for row in rows:
        if wanted is not None and len(out) >= wanted:
            break
        event = view(
            session, principal=principal, policy=policy, row=row, include_deleted=include_deleted
        )
        if event is None or (match is not None and not _delivered_match(event, match)):
            continue
        if skip:
            skip -= 1
            continue
        out.append(shapes.full_event(event, row, metadata=only_metadata))
    return out


def search_attributes(
    session: Session, *, principal: Principal, policy: tlp.Policy, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """``/attributes/restSearch`` (json): matching attributes, released as one audited page."""
    if body.get("returnFormat", "json") not in ("json", None):
        raise InvalidField("only returnFormat json is served here", field="returnFormat")
    aud = audience(principal, policy)
    stmt = (
        select(Attribute, Event)
        .join(Event, Event.id == Attribute.event_id)
        .where(repository.readable(aud), _attribute_cap(aud))
    )
    if not truthy(body.get("deleted", False)):
        stmt = stmt.where(Attribute.deleted.is_(False))
    stmt = stmt.where(*_attribute_clauses(body))
    uuids = terms(body.get("uuid"))
    if uuids.include:
        stmt = stmt.where(Attribute.uuid.in_([u.lower() for u in uuids.include]))
    event_body = {
        k: v
        for k, v in body.items()
        if k
        in ("tags", "tag", "org", "eventid", "published", "last", "publish_timestamp", "eventinfo")
    }
    stmt = event_filters(stmt, event_body, principal=principal)
    low, high = since(body.get("timestamp"), name="timestamp")
    if low is not None:
        stmt = stmt.where(Attribute.timestamp >= low)
    if high is not None:
        stmt = stmt.where(Attribute.timestamp <= high)
    limit, page = limit_page(body, default=None)
    stmt = stmt.order_by(Attribute.id)
    if limit is not None:
        stmt = stmt.limit(limit).offset((page - 1) * limit)
    rows = session.execute(stmt).all()
    delivery = sharing.release_attributes(
        session, principal=principal, rows=rows, channel=CHANNEL, policy=policy
    )
    ids = {a.uuid: (a.id, e.id) for a, e in rows}
    tags = shapes.TagShaper()
    out = []
    for item in delivery.items:
        attr_id, event_id = ids[item["uuid"]]
        item = shapes.attribute(item, tags, id=str(attr_id), event_id=str(event_id))
        item["distribution"] = shapes.downgrade(item.get("distribution"))
        out.append(item)
    return out


# --- sightings -------------------------------------------------------------------------------


def _sighting_out(row: Sighting, attr_id: int | None, principal: Principal) -> dict[str, Any]:
    doc = orjson.loads(row.doc)
    out = {
        "id": str(row.id),
        "attribute_id": str(attr_id or 0),
        "event_id": str(row.event_id),
        "org_id": "0",
        "date_sighting": str(row.date_sighting),
        "uuid": row.uuid,
        "source": str(doc.get("source") or ""),
        "type": str(row.type),
        "attribute_uuid": row.attribute_uuid,
        "event_uuid": doc.get("event_uuid", ""),
    }
    # Other organisations' sightings go out anonymised: who saw what is theirs to share.
    if row.org_uuid == principal.partner_uuid:
        out["org_id"] = str(principal.partner_id)
        out["Organisation"] = {
            "id": str(principal.partner_id),
            "uuid": principal.partner_uuid,
            "name": principal.partner_name,
        }
    return out


def _record_sightings(
    session: Session, *, principal: Principal, event: Event, uuids: list[str], how: str
) -> None:
    audit.append(
        session,
        [
            audit.Record(
                action="sighting.add",
                actor=principal.actor,
                object_ref=f"event:{event.uuid}",
                request_id=audit.current_request_id(),
                channel=CHANNEL.value,
                details={"via": how, "sightings": uuids[:1000], "count": len(uuids)},
            )
        ],
    )


def add_sighting(
    session: Session,
    *,
    principal: Principal,
    policy: tlp.Policy,
    body: dict[str, Any],
    target: str | None,
) -> list[dict[str, Any]]:
    """``/sightings/add[/{attribute}]``: a sighting on one attribute, or on every attribute
    with the given value the caller may see (SightingsController::add)."""
    ident = target or body.get("uuid") or body.get("id")
    stmt = select(Attribute, Event).join(Event, Event.id == Attribute.event_id)
    if ident:
        ident = str(ident).lower()
        stmt = stmt.where(
            Attribute.id == (row_id(ident) or 0) if ident.isdigit() else Attribute.uuid == ident
        )
    elif body.get("value") or body.get("values"):
        values = body.get("values") or [body["value"]]
        values = [str(v) for v in (values if isinstance(values, list) else [values])]
        stmt = stmt.where(
            Attribute.value_key.in_([v[:200] for v in values]), Attribute.value.in_(values)
        )
    else:
        raise InvalidField("a sighting needs an attribute (uuid or id) or a value", field="value")
    stmt = stmt.where(Attribute.deleted.is_(False)).order_by(Attribute.id).limit(10_000)
    rows = session.execute(stmt).all()
    delivery = sharing.release_attributes(
        session, principal=principal, rows=rows, channel=CHANNEL, policy=policy
    )
    allowed = {a["uuid"] for a in delivery.items}
    try:
        kind = int(body.get("type") or 0)
        when = int(body.get("timestamp") or body.get("date_sighting") or time.time())
    except (TypeError, ValueError):
        raise InvalidField("type and timestamp must be numbers", field="type") from None
    if kind not in (0, 1, 2):
        raise InvalidField(
            "type is 0 (sighting), 1 (false positive) or 2 (expiration)", field="type"
        )
    out = []
    by_event: dict[int, tuple[Event, list[str]]] = {}
    for attr, event in rows:
        if attr.uuid not in allowed:
            continue
        doc = {
            "source": str(body.get("source") or ""),
            "type": str(kind),
            "event_uuid": event.uuid,
            "Organisation": {"uuid": principal.partner_uuid, "name": principal.partner_name},
        }
        row = Sighting(
            uuid=str(uuid_mod.uuid4()),
            event_id=event.id,
            attribute_uuid=attr.uuid,
            org_uuid=principal.partner_uuid,
            type=kind,
            date_sighting=when,
            doc=orjson.dumps(doc),
        )
        session.add(row)
        session.flush()
        by_event.setdefault(event.id, (event, []))[1].append(row.uuid)
        out.append(_sighting_out(row, attr.id, principal))
    for event, uuids in by_event.values():
        _record_sightings(session, principal=principal, event=event, uuids=uuids, how="add")
    notifications.sightings_feedback(
        session, principal=principal, sightings=[(o["attribute_uuid"], kind) for o in out]
    )
    return out


def search_sightings(
    session: Session,
    *,
    principal: Principal,
    policy: tlp.Policy,
    body: dict[str, Any],
    context: str,
) -> list[dict[str, Any]]:
    """``/sightings/restSearch/{event|attribute}``: sightings on attributes the caller may see
    (the attributes are released as one audited page; the sync pull reads ``attribute_uuid``,
    ``event_uuid``, ``uuid``, ``type``, ``source``, ``date_sighting``, Sighting.php:1425-1523)."""
    ids = terms(body.get("uuid") if body.get("uuid") else body.get("id", body.get("context_id")))
    if not ids.include:
        return []
    stmt = select(Sighting)
    if context == "attribute":
        attr_ids = [n for n in map(row_id, ids.include) if n is not None]
        attr_uuids = [v.lower() for v in ids.include if _is_uuid(v)]
        uuids = select(Attribute.uuid).where(
            or_(Attribute.id.in_(attr_ids), Attribute.uuid.in_(attr_uuids))
        )
        stmt = stmt.where(Sighting.attribute_uuid.in_(uuids))
    else:
        events = select(Event.id).where(_event_ids_clause(ids.include))
        stmt = stmt.where(Sighting.event_id.in_(events))
    low, _ = since(body.get("last"), name="last")
    if low is not None:
        stmt = stmt.where(Sighting.date_sighting >= low)
    sightings = list(session.scalars(stmt.order_by(Sighting.id)))
    if not sightings:
        return []
    wanted = sorted({s.attribute_uuid for s in sightings})
    rows = []
    for start in range(0, len(wanted), 900):
        rows += session.execute(
            select(Attribute, Event)
            .join(Event, Event.id == Attribute.event_id)
            .where(Attribute.uuid.in_(wanted[start : start + 900]))
        ).all()
    delivery = sharing.release_attributes(
        session, principal=principal, rows=rows, channel=CHANNEL, policy=policy
    )
    allowed = {a["uuid"] for a in delivery.items}
    attr_ids = {a.uuid: a.id for a, _ in rows}
    return [
        {"Sighting": _sighting_out(s, attr_ids.get(s.attribute_uuid), principal)}
        for s in sightings
        if s.attribute_uuid in allowed
    ]


def _sighting_event(
    session: Session, *, principal: Principal, policy: tlp.Policy, ident: str
) -> tuple[Event, set[str] | None] | None:
    """The event sightings are pushed for and the attribute uuids the caller may sight on it
    (None: all of them, for the event's creator, who holds it whole), or None when the
    caller may not know the event: decided as the view decides (released and audited), so
    an event the caller may not see answers exactly as an unknown one."""
    event = find_event(session, ident)
    if event is None:
        return None
    if event.source_partner_id == principal.partner_id:
        return event, None
    released = view(session, principal=principal, policy=policy, row=event, include_deleted=False)
    if released is None:
        return None
    uuids = {str(a.get("uuid")).lower() for a in released.get("Attribute") or []}
    for item in released.get("Object") or []:
        uuids.update(str(a.get("uuid")).lower() for a in item.get("Attribute") or [])
    return event, uuids


def _stored_sightings(session: Session, uuids: list[str], *, event_id: int | None) -> list[str]:
    have: list[str] = []
    for start in range(0, len(uuids), 900):
        stmt = select(Sighting.uuid).where(Sighting.uuid.in_(uuids[start : start + 900]))
        if event_id is not None:
            stmt = stmt.where(Sighting.event_id == event_id)
        have += session.scalars(stmt)
    return have


def known_sightings(
    session: Session, *, principal: Principal, policy: tlp.Policy, event_uuid: str, body: Any
) -> list[str]:
    """``/sightings/filterSightingUuidsForPush/{event}``: which offered uuids the hub has on
    that event; nothing for an event the caller may not know (as for an unknown one)."""
    if not isinstance(body, list):
        raise InvalidField("the body must be a list of sighting uuids", field="uuid")
    offered = [str(u).lower() for u in body if isinstance(u, str)]
    if not offered:
        return []
    found = _sighting_event(session, principal=principal, policy=policy, ident=event_uuid)
    if found is None:
        return []
    return _stored_sightings(session, offered, event_id=found[0].id)


def save_sightings(
    session: Session, *, principal: Principal, policy: tlp.Policy, event_uuid: str, body: Any
) -> int | None:
    """``/sightings/bulkSaveSightings/{event}``: new sightings (by uuid) on attributes of that
    event the caller may see; they are recorded as the pushing partner's
    (Sighting.php:1255-1333). None when the caller may not know the event (or it does not
    exist): the endpoint answers MISP's 404 alike."""
    if not isinstance(body, list):
        raise InvalidField("the body must be a list of sightings", field="Sighting")
    found = _sighting_event(session, principal=principal, policy=policy, ident=event_uuid)
    if found is None:
        return None
    event, attrs = found
    items = [s.get("Sighting", s) for s in body if isinstance(s, dict)]
    if attrs is None:
        attrs = set(session.scalars(select(Attribute.uuid).where(Attribute.event_id == event.id)))
    offered = [str(s.get("uuid") or "").lower() for s in items]
    # Any event: a sighting uuid is unique in the store.
    known = set(_stored_sightings(session, [u for u in offered if u], event_id=None))
    fresh = []
    for item, uuid in zip(items, offered, strict=True):
        attr_uuid = str(item.get("attribute_uuid") or "").lower()
        if not _is_uuid(uuid) or uuid in known or attr_uuid not in attrs:
            continue
        try:
            kind, when = int(item.get("type") or 0), int(item.get("date_sighting") or 0)
        except (TypeError, ValueError):
            continue
        known.add(uuid)
        doc = {k: v for k, v in item.items() if k not in ("id", "attribute_id", "event_id")}
        doc["event_uuid"] = event.uuid
        fresh.append(
            {
                "uuid": uuid,
                "event_id": event.id,
                "attribute_uuid": attr_uuid,
                "org_uuid": principal.partner_uuid,
                "type": kind if kind in (0, 1, 2) else 0,
                "date_sighting": when or int(time.time()),
                "doc": orjson.dumps(doc),
            }
        )
    if fresh:
        session.execute(Sighting.__table__.insert(), fresh)
        _record_sightings(
            session,
            principal=principal,
            event=event,
            uuids=[f["uuid"] for f in fresh],
            how="bulkSaveSightings",
        )
        notifications.sightings_feedback(
            session,
            principal=principal,
            sightings=[(f["attribute_uuid"], f["type"]) for f in fresh],
        )
    return len(fresh)

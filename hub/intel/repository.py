"""Queries over the store. ``readable`` is the partner-facing pre-filter (SQL), built from
``tlp.audience_for``; the release path still decides every item."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, bindparam, false, func, or_, select
from sqlalchemy.orm import Session

import tlp
from hub.models import Attribute, Event, EventVersion, QuarantineItem

# The pre-filter has few shapes (which of the three branches an audience has); each shape is
# built once with bind parameters, so a page request does not rebuild the expression tree.
_Shape = tuple[bool, tuple[int, ...] | None, bool, bool]


def _shape(audience: tlp.Audience) -> _Shape:
    own = audience.own_max is not None and bool(audience.org_uuid)
    community = (
        tuple(sorted(audience.community_distributions))
        if audience.community_max is not None and audience.community_distributions
        else None
    )
    named = audience.named_max is not None and bool(audience.org_uuid)
    return own, community, named, audience.exercise is not None


_AUDIENCE_PARAMS = (
    "aud_org",
    "aud_own_cap",
    "aud_community_cap",
    "aud_named_like",
    "aud_named_cap",
    "aud_exercise",
)


def _audience_params(audience: tlp.Audience) -> dict[str, Any]:
    org = audience.org_uuid or ""
    return {
        "aud_org": org,
        "aud_own_cap": audience.own_max.rank if audience.own_max is not None else -1,
        "aud_community_cap": (
            audience.community_max.rank if audience.community_max is not None else -1
        ),
        "aud_named_like": f'%"{org}"%',
        "aud_named_cap": audience.named_max.rank if audience.named_max is not None else -1,
    } | ({"aud_exercise": audience.exercise} if audience.exercise is not None else {})


@lru_cache(maxsize=64)
def _readable_clause(shape: _Shape) -> ColumnElement[bool]:
    """The pre-filter for a shape, with bind parameters (the values of ``_audience_params``)."""
    return _readable_expression(shape, {name: bindparam(name) for name in _AUDIENCE_PARAMS})


def _readable_expression(shape: _Shape, p: dict[str, Any]) -> ColumnElement[bool]:
    """The pre-filter over ``p``'s values, which are literal values or bind parameters."""
    own, community, named, exercise = shape
    branches: list[ColumnElement[bool]] = []
    if own:
        branches.append(
            and_(
                Event.orgc_uuid == p["aud_org"],
                Event.tlp_rank <= p["aud_own_cap"],
                or_(Event.min_rank.is_(None), Event.min_rank <= p["aud_own_cap"]),
            )
        )
    if community:
        branches.append(
            and_(
                Event.distribution.in_(community),
                Event.tlp_rank <= p["aud_community_cap"],
                Event.min_rank.is_not(None),
                Event.min_rank <= p["aud_community_cap"],
            )
        )
    if named:
        branches.append(
            and_(
                Event.distribution == 4,
                Event.sg_members.like(p["aud_named_like"]),
                Event.tlp_rank <= p["aud_named_cap"],
                Event.min_rank.is_not(None),
                Event.min_rank <= p["aud_named_cap"],
            )
        )
    if not branches:
        return false()
    # The exercise rule (``tlp.in_scope``): an exercise's items only to its keys, real
    # traffic only to real keys; ANDed with every branch. ``coalesce``: no index serves it,
    # so pages keep walking ``ix_events_changed`` (not ``ix_events_exercise_id``, which every
    # real event matches).
    scope = func.coalesce(Event.exercise_id, "") == (p["aud_exercise"] if exercise else "")
    return and_(scope, or_(*branches))


def attribute_cap(audience: tlp.Audience) -> ColumnElement[bool]:
    """Attributes whose label the audience may receive at all (its own up to ``own_max``);
    with ``readable`` on their event, a pre-filter for attribute searches."""
    cap = audience.max_label.rank if audience.max_label else -1
    if audience.own_max is not None and audience.org_uuid:
        own = and_(
            Event.orgc_uuid == audience.org_uuid, Attribute.tlp_rank <= audience.own_max.rank
        )
        return or_(own, Attribute.tlp_rank <= cap)
    return Attribute.tlp_rank <= cap


def readable(audience: tlp.Audience) -> ColumnElement[bool]:
    """Events the audience may see, and that have something left to deliver."""
    return _readable_expression(_shape(audience), _audience_params(audience))


# What a listing needs of an event, without its document: pages are read as plain rows.
SUMMARY_COLUMNS = (
    Event.id,
    Event.uuid,
    Event.info,
    Event.date,
    Event.timestamp,
    Event.published,
    Event.tlp_rank,
    Event.min_rank,
    Event.profile,
    Event.narrowed,
    Event.meta_timestamp,
    Event.withdrawn_ts,
    Event.publish_timestamp,
    Event.publications,
    Event.version,
    Event.attribute_count,
    Event.tags,
    Event.chr,
    Event.exercise_id,
    Event.orgc_uuid,
    Event.orgc_name,
    Event.distribution,
    Event.sg_members,
    Event.changed_at,
    Event.doc,
)


def event_page(
    *,
    audience: tlp.Audience,
    since: int | None,
    tag: str | None,
    published: bool | None,
    type: str | None,
    after: tuple[Any, int] | None,
    limit: int,
) -> tuple[Select[Any], dict[str, Any]]:
    """A page of event summaries: the statement (cached per shape) and its parameters."""
    stmt = _page_statement(
        _shape(audience), since is not None, published, bool(tag), bool(type), after is not None
    )
    params = _audience_params(audience) | {"page_limit": limit}
    if since is not None:
        params["page_since"] = since
    if tag:  # a superset: the tag's JSON spelling, case-insensitively (exact on released tags)
        params["page_tag"] = f"%{_like_escape(orjson.dumps(tag.lower()).decode())}%"
    if type:
        params["page_type"] = type
    if after is not None:
        params["after_t"], params["after_id"] = after
    return stmt, params


@lru_cache(maxsize=256)
def _page_statement(
    shape: _Shape, since: bool, published: bool | None, tag: bool, type: bool, after: bool
) -> Select[Any]:
    stmt = select(*SUMMARY_COLUMNS).where(_readable_clause(shape))
    if since:
        stmt = stmt.where(Event.timestamp >= bindparam("page_since"))
    if published is not None:
        stmt = stmt.where(published_superset(published))
    if tag:
        stmt = stmt.where(func.lower(Event.tags).like(bindparam("page_tag"), escape="\\"))
    if type:
        stmt = stmt.where(
            select(Attribute.id)
            .where(
                Attribute.event_id == Event.id,
                Attribute.type == bindparam("page_type"),
                Attribute.deleted.is_(False),
            )
            .exists()
        )
    if after:
        after_t = bindparam("after_t", type_=Event.changed_at.type)
        after_id = bindparam("after_id")
        stmt = stmt.where(
            or_(Event.changed_at > after_t, and_(Event.changed_at == after_t, Event.id > after_id))
        )
    return stmt.order_by(Event.changed_at, Event.id).limit(bindparam("page_limit"))


def published_superset(published: bool) -> ColumnElement[bool]:
    """Events whose copy may be published (or not) for a recipient: a superset, decided per
    recipient by ``hub.sharing.view.publication`` (a copy stays published after changes it
    cannot see; an event stored published is published for everyone)."""
    if published:
        return or_(Event.published.is_(True), Event.publications != "[]")
    return Event.published.is_(False)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def by_uuid(session: Session, uuid: str) -> Event | None:
    return session.scalar(select(Event).where(Event.uuid == uuid))


def versions(session: Session, event: Event) -> list[EventVersion]:
    return list(
        session.scalars(
            select(EventVersion)
            .where(EventVersion.event_id == event.id)
            .order_by(EventVersion.version)
        )
    )


def quarantine_page(
    session: Session, *, status: str | None, after: int | None, limit: int
) -> list[QuarantineItem]:
    stmt = select(QuarantineItem)
    if status:
        stmt = stmt.where(QuarantineItem.status == status)
    if after is not None:
        stmt = stmt.where(QuarantineItem.id > after)
    return list(session.scalars(stmt.order_by(QuarantineItem.id).limit(limit)))

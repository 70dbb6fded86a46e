"""Incident cases: a partner (or the NCSC, through an operator) opens one; the items shared
during the incident are linked to it; referrals record who was sent to whom, by whom, when;
closing records the lessons learned. They flush, never commit; every write is audited.

A case is a closed group under its own TLP label: its opener, the partners it referred to
and operators see it, as long as ``tlp.decide`` lets the case's label go to them over REST
as organisations it names; anyone else gets 404, as for a case that does not exist. A
linked item is shown to each viewer only when the release path would give that viewer the
event (``hub.sharing.events.decide_event``); the others do not learn it is there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.auth.principal import Principal
from hub.context import current_request_id
from hub.errors import Conflict, Forbidden, NotFound, recorded
from hub.incidents import repository
from hub.incidents.schemas import CaseClose, CaseCreate, CaseReferral
from hub.intel import repository as events
from hub.lineage import service as lineage
from hub.models import EventVersion, IncidentCase, IncidentCaseItem, IncidentReferral, Partner
from hub.models.base import utcnow
from hub.partners import service as partners
from hub.sharing.events import decide_event
from hub.sharing.recipients import Recipient
from hub.vocabulary import CaseStatus, Role


def _audit(
    session: Session, *, action: str, who: Principal, case: IncidentCase, **details: Any
) -> int:
    return audit.append(
        session,
        [
            audit.Record(
                action=f"incidents.case.{action}",
                actor=who.actor,
                object_ref=f"incident:{case.uuid}",
                recipient_uuid=details.pop("recipient_uuid", None),
                request_id=current_request_id(),
                details=details,
            )
        ],
    )[0]


def _may_hold(
    case: IncidentCase, partner: Partner, opener_uuid: str, policy: tlp.Policy
) -> tlp.Decision:
    """Whether the case's label may go to ``partner`` as an organisation the case names."""
    named = {opener_uuid, partner.uuid}
    return tlp.decide(
        label=tlp.parse_label(f"tlp:{case.tlp}"),
        recipient=Recipient.of_partner(partner, actor="case").tlp,
        channel=tlp.Channel.REST,
        addressing=tlp.Addressing.sharing_group(named),
        source_org_uuid=opener_uuid,
        policy=policy,
    )


def open_case(session: Session, *, who: Principal, body: CaseCreate) -> IncidentCase:
    case = IncidentCase(
        title=body.title,
        sector=body.sector.value,
        tlp=body.tlp,
        description=body.description,
        status=CaseStatus.OPEN.value,
        opener_id=who.partner_id,
        opened_by=who.actor,
    )
    session.add(case)
    session.flush()
    _audit(session, action="open", who=who, case=case, tlp=case.tlp, sector=case.sector)
    return case


def visible(session: Session, *, who: Principal, uuid: str, policy: tlp.Policy) -> IncidentCase:
    """The case, when the caller may see it (module doc); 404 otherwise."""
    case = repository.case_by_uuid(session, uuid.lower())
    if case is None:
        raise NotFound(f"no incident case {uuid}")
    if who.role is Role.OPERATOR or who.partner_id == case.opener_id:
        return case
    if who.partner_id in repository.referred_partner_ids(session, case.id):
        caller = session.get(Partner, who.partner_id)
        opener = session.get(Partner, case.opener_id)
        if caller is not None and opener is not None:
            if _may_hold(case, caller, opener.uuid, policy).allowed:
                return case
    raise NotFound(f"no incident case {uuid}")


def listing(
    session: Session, *, who: Principal, after_id: int | None, limit: int, policy: tlp.Policy
) -> tuple[list[dict[str, Any]], int | None]:
    """The cases the caller may see, newest first, and the id to continue after (None at
    the end): each candidate is decided as ``visible`` decides it, so the page and its
    cursor count only cases the caller sees."""
    operator = who.role is Role.OPERATOR
    found: list[tuple[int, dict[str, Any]]] = []
    while len(found) <= limit:
        rows = repository.cases_for(
            session, partner_id=None if operator else who.partner_id, after_id=after_id, limit=100
        )
        for case in rows:
            after_id = case.id
            try:
                visible(session, who=who, uuid=case.uuid, policy=policy)
            except NotFound:
                continue
            found.append((case.id, _summary(session, case)))
            if len(found) > limit:
                break
        if len(rows) < 100:
            break
    page = found[:limit]
    next_id = page[-1][0] if len(found) > limit else None
    return [item for _id, item in page], next_id


def _summary(session: Session, case: IncidentCase) -> dict[str, Any]:
    opener = session.get(Partner, case.opener_id)
    return {
        "uuid": case.uuid,
        "title": case.title,
        "sector": case.sector,
        "tlp": case.tlp,
        "status": case.status,
        "opener": opener.name if opener is not None else None,
        "opened_at": case.opened_at,
    }


def _open(case: IncidentCase) -> None:
    if case.status != CaseStatus.OPEN.value:
        raise Conflict(f"incident case {case.uuid} is closed")


def link_item(
    session: Session, *, who: Principal, case: IncidentCase, event_uuid: str, policy: tlp.Policy
) -> IncidentCaseItem:
    """Link a shared event the caller may receive; one it may not is answered as missing."""
    _open(case)
    event = events.by_uuid(session, event_uuid)
    if (
        event is None
        or decide_event(session, to=who, event=event, channel=tlp.Channel.REST, policy=policy).event
        is None
    ):
        raise NotFound(f"no event {event_uuid}")
    item = IncidentCaseItem(
        case_id=case.id, event_uuid=event_uuid, linker_id=who.partner_id, linked_by=who.actor
    )
    try:
        with session.begin_nested():
            session.add(item)
            session.flush()
    except IntegrityError:
        raise Conflict(f"event {event_uuid} is already linked to this case") from None
    _audit(session, action="link", who=who, case=case, event_uuid=event_uuid)
    _lineage(session, who=who, case=case, event=event)
    return item


def _lineage(session: Session, *, who: Principal, case: IncidentCase, event: Any) -> None:
    """The link as a lineage edge: the case (an artifact) derived from the event version
    linked, by a ``incident-link`` activity on behalf of the linker. Lineage views are for
    operators and auditors only, so the edge tells no partner about the case."""
    version = session.scalar(
        select(EventVersion).where(
            EventVersion.event_id == event.id, EventVersion.version == event.version
        )
    )
    if version is None:
        return  # an event without a stored version has nothing to derive from
    opener = session.get(Partner, case.opener_id)
    act = lineage.activity(
        session,
        kind="incident-link",
        agent=who.actor,
        plan="incident-case@1",
        on_behalf_of=who.partner_uuid,
        params={"case": case.uuid},
    )
    case_art = lineage.artifact(
        session,
        kind="incident-case",
        external_id=case.uuid,
        version=1,
        generated_by=None,
        source_uuid=opener.uuid if opener is not None else None,
        tlp=case.tlp,
    )
    source = lineage.event_version_artifact(session, version, event.uuid)
    lineage.derive(session, derived=case_art, sources=[source], rel="derived_from", by=act)


def refer(
    session: Session, *, who: Principal, case: IncidentCase, body: CaseReferral, policy: tlp.Policy
) -> IncidentReferral:
    """Record that ``body.referred`` was sent to a partner; the partner then sees the case,
    so it must be active and allowed the case's label (409 saying why otherwise).

    Who may widen a case's audience is its source's choice (DESIGN.md §3): the opener; an
    operator only for a case whose label lets a recipient pass it on in the community (CLEAR,
    GREEN); a partner referred in the case never (403)."""
    _open(case)
    operator = who.role is Role.OPERATOR
    if who.partner_id != case.opener_id and not (
        operator and tlp.parse_label(f"tlp:{case.tlp}").rank <= tlp.Tlp.GREEN.rank
    ):
        raise Forbidden(
            "only the organisation that opened the case refers others to it (an operator "
            "too, for a TLP:CLEAR or TLP:GREEN case)"
        )
    try:
        target: Partner | None = partners.get(session, ref=str(body.to_partner))
    except NotFound:
        if operator:
            raise
        target = None
    opener = session.get(Partner, case.opener_id)
    assert opener is not None
    decision = _may_hold(case, target, opener.uuid, policy) if target is not None else None
    if target is None or decision is None or not decision.allowed:
        why = decision.sentence if decision is not None else "no such partner"
        if operator:
            raise Conflict(
                f"{target.name if target else body.to_partner} may not receive this "
                f"TLP:{case.tlp.upper()} case: {why}",
                field="to_partner",
            )
        # A partner is not told why (nor whether the uuid is a partner at all): the registry,
        # agreements and tiers are the operators'. The refusal and its reason are recorded.
        _audit(
            session, action="refer.refused", who=who, case=case, to=str(body.to_partner), why=why
        )
        raise recorded(
            Conflict(
                "this case cannot be referred to that partner; NCSC can say why",
                field="to_partner",
            )
        )
    referral = IncidentReferral(
        case_id=case.id,
        referred=body.referred,
        to_partner_id=target.id,
        referrer_id=who.partner_id,
        referred_by=who.actor,
        note=body.note,
    )
    session.add(referral)
    session.flush()
    _audit(
        session,
        action="referral",
        who=who,
        case=case,
        recipient_uuid=target.uuid,
        referred=body.referred,
        to=target.uuid,
    )
    return referral


def close(session: Session, *, who: Principal, case: IncidentCase, body: CaseClose) -> None:
    """Close the case with its lessons learned: its opener or an operator only."""
    if who.role is not Role.OPERATOR and who.partner_id != case.opener_id:
        raise Forbidden("only the organisation that opened the case, or an operator, closes it")
    _open(case)
    case.status = CaseStatus.CLOSED.value
    case.closer_id, case.closed_by, case.closed_at = who.partner_id, who.actor, utcnow()
    case.lessons_learned = body.lessons_learned
    session.flush()
    _audit(session, action="close", who=who, case=case)


def read(
    session: Session, *, who: Principal, case: IncidentCase, policy: tlp.Policy
) -> dict[str, Any]:
    """The case as ``who`` sees it (``read_recorded`` without the audit number)."""
    return read_recorded(session, who=who, case=case, policy=policy)[0]


def read_recorded(
    session: Session, *, who: Principal, case: IncidentCase, policy: tlp.Policy
) -> tuple[dict[str, Any], int]:
    """The case as ``who`` sees it, and the audit entry that recorded the view: linked items
    only where the release path gives ``who`` the event (their uuids; the case's own label
    is the answer's handling obligation)."""
    items = []
    for item in repository.case_items(session, case.id):
        event = events.by_uuid(session, item.event_uuid)
        if event is None:
            continue
        if (
            decide_event(
                session, to=who, event=event, channel=tlp.Channel.REST, policy=policy
            ).event
            is None
        ):
            continue
        items.append({"event_uuid": item.event_uuid, "linked_at": item.linked_at})
    referrals = repository.case_referrals(session, case.id)
    ids = {case.opener_id, *(r.to_partner_id for r in referrals)}
    ids |= {r.referrer_id for r in referrals} | ({case.closer_id} if case.closer_id else set())
    orgs = repository.partners_by_id(session, ids)

    def org(pid: int) -> dict[str, str]:
        return {"uuid": orgs[pid].uuid, "name": orgs[pid].name}

    seq = _audit(
        session,
        action="view",
        who=who,
        case=case,
        recipient_uuid=who.partner_uuid,
        items=[i["event_uuid"] for i in items],
    )
    body = {
        "uuid": case.uuid,
        "title": case.title,
        "sector": case.sector,
        "tlp": case.tlp,
        "description": case.description,
        "status": case.status,
        "opener": org(case.opener_id),
        "opened_by": orgs[case.opener_id].name,
        "opened_at": case.opened_at,
        "closed_by": org(case.closer_id)["name"] if case.closer_id is not None else None,
        "closed_at": case.closed_at,
        "lessons_learned": case.lessons_learned,
        "items": items,
        "referrals": [
            {
                "referred": r.referred,
                "to": org(r.to_partner_id),
                "by": org(r.referrer_id),
                "at": r.referred_at,
                "note": r.note,
            }
            for r in referrals
        ],
    }
    return body, seq


def lessons_of(
    session: Session, *, who: Principal, case: IncidentCase, policy: tlp.Policy
) -> dict[str, Any]:
    """What the case's lessons learned give a knowledge product (``hub.knowledge.lessons``):
    for its opener only (an operator: for the hub's own cases), once it is closed with
    lessons; the linked items only as far as the release path gives ``who`` each event (the
    others stay out of the product)."""
    if who.partner_id != case.opener_id:
        # The lessons are the opener's, told to those it chose: only it may publish them.
        raise Forbidden(
            "only the organisation that opened the case turns its lessons into a knowledge product"
        )
    if case.status != CaseStatus.CLOSED.value or not case.lessons_learned:
        raise Conflict(f"incident case {case.uuid} is not closed with lessons learned yet")
    opener = session.get(Partner, case.opener_id)
    assert opener is not None
    items = []
    for item in repository.case_items(session, case.id):
        event = events.by_uuid(session, item.event_uuid)
        if event is None:
            continue
        decided = decide_event(
            session, to=who, event=event, channel=tlp.Channel.REST, policy=policy
        )
        if decided.event is not None:
            items.append(item.event_uuid)
    return {
        "uuid": case.uuid,
        "title": case.title,
        "tlp": case.tlp,
        "lessons_learned": case.lessons_learned,
        "opener_uuid": opener.uuid,
        "item_uuids": items,
    }

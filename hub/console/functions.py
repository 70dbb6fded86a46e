"""What the pages of three network functions show — incident handling, knowledge exchange,
exercises — read through their services as the signed-in key.

The console decides no TLP question itself: a case, its linked items, a product and its
credits are what ``hub.incidents.cases``, ``hub.knowledge.views`` and the release path give
the viewer (and record, where they record a delivery). An exercise report is read with the
same defensiveness as the REST answer may grow: every field it has is shown, the known ones
drawn.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.auth.principal import Principal
from hub.errors import NotFound
from hub.exercises import report as exercise_report
from hub.exercises import service as exercises
from hub.incidents import cases, repository, service
from hub.knowledge import lessons, views
from hub.knowledge import repository as knowledge_rows
from hub.knowledge import service as knowledge
from hub.models import IncidentSupport, KnowledgeProduct, Partner
from hub.partners import service as partners
from hub.vocabulary import (
    Availability,
    IncidentService,
    Region,
    Role,
    Sector,
    SupportAudience,
)

STAFF = (Role.OPERATOR, Role.AUDITOR)
PAGE = 100


def _staff(who: Principal) -> bool:
    return who.role in STAFF


# --- incidents -------------------------------------------------------------------------------


def case_list(session: Session, *, who: Principal, policy: tlp.Policy) -> dict[str, Any]:
    """The cases the viewer sees (``cases.listing``: decided one by one), newest first; an
    auditor none (a case is a closed group; the REST case routes refuse auditors too)."""
    items: list[dict[str, Any]] = []
    more = None
    if who.role is not Role.AUDITOR:
        items, more = cases.listing(session, who=who, after_id=None, limit=PAGE, policy=policy)
    return {
        "cases": items,
        "more": more is not None,
        "sectors": [s.value for s in Sector],
        "labels": ["clear", "green", "amber", "amber+strict", "red"],
        "may_open": who.role in (Role.OPERATOR, Role.PARTNER),
    }


def case_page(session: Session, *, who: Principal, uuid: str, policy: tlp.Policy) -> dict[str, Any]:
    """The case as ``cases.read`` gives the viewer (audited as a view), and what it may do."""
    found = cases.visible(session, who=who, uuid=uuid, policy=policy)
    case = cases.read(session, who=who, case=found, policy=policy)
    opener = who.role is Role.OPERATOR or who.partner_id == found.opener_id
    acting = who.role in (Role.OPERATOR, Role.PARTNER)
    made = [
        {"uuid": p.uuid, "state": p.state, "title": _title(session, p)}
        for p in lessons.products_from_case(session, found.uuid)
        if views.may_read_rows(who, p)
    ]
    is_open = case["status"] == "open"
    return {
        "case": case,
        "may_link": acting and is_open,
        "may_refer": acting and is_open,
        "may_close": acting and opener and is_open,
        "may_make_product": acting
        and opener
        and not is_open
        and bool(case["lessons_learned"])
        and not lessons.products_from_case(session, found.uuid),
        "product_labels": lessons.labels_for(found.tlp),
        "product_kinds": list(lessons.KINDS),
        "products": made,
        "item_links": _staff(who),
    }


def _title(session: Session, product: KnowledgeProduct) -> str:
    return knowledge_rows.version_of(session, product, product.version).title


def support_list(session: Session) -> dict[str, Any]:
    """Every partner with an entry, and the active incident handlers without one."""
    rows = session.execute(
        select(Partner, IncidentSupport)
        .join(IncidentSupport, IncidentSupport.partner_id == Partner.id)
        .order_by(Partner.name)
    ).all()
    seen = {p.id for p, _s in rows}
    missing = [p for p, s in repository.incident_handlers(session) if p.id not in seen]
    return {
        "entries": [
            {"partner": p, "support": service.support_snapshot(s), "updated_at": s.updated_at}
            for p, s in rows
        ],
        "missing": missing,
    }


def support_page(session: Session, *, who: Principal, ref: str) -> dict[str, Any]:
    """One partner's incident support: staff any partner's, a partner its own (another's
    is answered as missing)."""
    partner = partners.get(session, ref=ref)
    if not _staff(who) and partner.id != who.partner_id:
        raise NotFound(f"no partner {ref}")
    row = repository.support_of(session, partner.id)
    return {
        "partner": partner,
        "support": service.support_snapshot(row),
        "updated": row,
        "may_edit": who.role is Role.OPERATOR
        or (who.role is Role.PARTNER and partner.id == who.partner_id),
        "options": {
            "services": [s.value for s in IncidentService],
            "audience": [a.value for a in SupportAudience],
            "sectors": [s.value for s in Sector],
            "regions": [r.value for r in Region],
            "availability": [a.value for a in Availability],
        },
    }


def obligations_page(session: Session) -> dict[str, Any]:
    rows = [service.obligation_read(r) for r in repository.obligations(session)]
    return {"obligations": rows}


# --- knowledge -------------------------------------------------------------------------------


def product_list(session: Session, *, who: Principal, policy: tlp.Policy) -> dict[str, Any]:
    """The viewer's organisation's products with their state (staff: every product), and the
    published products the release path gives the viewer (a partner; audited as a page)."""
    owner = None if _staff(who) else who.partner_id
    own = [
        views.owner_view(session, p)
        for p in knowledge_rows.owned_page(session, owner_id=owner, after=None, limit=PAGE)
    ]
    received: list[dict[str, Any]] = []
    if not _staff(who):
        received, _last, _seq = views.released_page(
            session, who=who, policy=policy, after=None, limit=PAGE
        )
        mine = {p["uuid"] for p in own}
        received = [p for p in received if p["uuid"] not in mine]
    return {"own": own, "received": received, "all": _staff(who)}


def product_page(
    session: Session, *, who: Principal, uuid: str, version: int | None, policy: tlp.Policy
) -> dict[str, Any]:
    """Owner and staff: any version from the rows, with its workflow and actions. Anyone
    else: the published version as the release path gives it (recorded), or 404."""
    product = knowledge_rows.product_by_uuid(session, uuid)
    if product is None:
        raise NotFound(f"no knowledge product {uuid}")
    if views.may_read_rows(who, product):
        if version is not None and not 1 <= version <= product.version:
            raise NotFound(f"product {uuid} has no version {version}")
        shown = views.owner_view(session, product, version)
        editable = who.role is Role.OPERATOR or (
            who.role is Role.PARTNER and knowledge.owns(who, product)
        )
        current = shown["version"] == product.version
        case_uuid = lessons.case_of_product(session, product.uuid)
        return {
            "product": shown,
            "rows": True,
            "versions": list(range(product.version, 0, -1)),
            "may_review": editable
            and current
            and product.state in (knowledge.DRAFT, knowledge.NEEDS_REVIEW)
            and shown["workflow"]["author"] != who.actor,
            "author_is_viewer": shown["workflow"]["author"] == who.actor,
            "may_publish": editable and current and product.state == knowledge.REVIEWED,
            "sources": _sources_as_shown(session, product, shown["version"], who),
            "case": case_uuid,
            "used_by": _used_by(session, product, who),
            "item_links": _staff(who),
        }
    if version is not None and version != product.published_version:
        raise NotFound(f"no knowledge product {uuid}")
    shown, _seq = views.release_one(session, who=who, product=product, policy=policy)
    return {
        "product": shown,
        "rows": False,
        "versions": [],
        "may_review": False,
        "may_publish": False,
        "sources": [  # released_view names a source only with its organisation
            {"credit": c["credit"], "item": c.get("item"), "anonymous": "organisation" not in c}
            for c in shown["sources"]
        ],
        "case": None,
        "used_by": _used_by(session, product, who),
        "item_links": False,
    }


def _sources_as_shown(
    session: Session, product: KnowledgeProduct, version: int, who: Principal
) -> list[dict[str, Any]]:
    """The recorded sources as the console shows them: a named one by its credit (its
    organisation and item); an anonymous one by its credit line only, never the
    organisation (staff also get the item to open on the item page)."""
    row = knowledge_rows.version_of(session, product, version)
    out = []
    for s in knowledge_rows.sources_of(session, row):
        if s.named:
            out.append({"credit": s.credit, "item": s.item_uuid, "anonymous": False})
        else:
            item = s.item_uuid if _staff(who) else None
            out.append({"credit": s.credit, "item": item, "anonymous": True})
    return out


def _used_by(session: Session, product: KnowledgeProduct, who: Principal) -> list[dict[str, Any]]:
    """Lineage forward: products whose sources use this product's published event, as far as
    the viewer may read their rows (a partner: its own organisation's)."""
    if product.published_version is None:
        return []
    rows = knowledge_rows.products_using(
        session, item_uuids=[product.event_uuid], event_uuid=product.event_uuid
    )
    out, seen = [], set()
    for used, version, _source in rows:
        if used.uuid in seen or not views.may_read_rows(who, used):
            continue
        seen.add(used.uuid)
        out.append({"uuid": used.uuid, "version": version.version, "state": used.state})
    return out


def used_by_item(session: Session, item_uuid: str) -> list[dict[str, Any]]:
    """Lineage forward from an item (staff's item page): every product version that used it."""
    rows = knowledge_rows.products_using(session, item_uuids=[item_uuid], event_uuid=item_uuid)
    return [
        {"uuid": p.uuid, "version": v.version, "state": p.state, "title": v.title}
        for p, v, _s in rows
    ]


# --- exercises -------------------------------------------------------------------------------


def exercise_list(session: Session) -> dict[str, Any]:
    return {"exercises": exercises.all_exercises(session)}


def _inject_state(inject: Any) -> str:
    """Sent, failed, scheduled or by hand, read from whichever fields the inject has."""
    state = getattr(inject, "state", None)
    if isinstance(state, str) and state:
        return state
    if getattr(inject, "sent_at", None) is not None:
        return "sent"
    if getattr(inject, "failed_at", None) is not None or getattr(inject, "error", None):
        return "failed"
    if getattr(inject, "send_at", None) is not None:
        return "scheduled"
    return "by hand"


def exercise_page(session: Session, *, uuid: str) -> dict[str, Any]:
    exercise = exercises.get(session, uuid)
    return {
        "exercise": exercise,
        "participants": exercises.participants(session, exercise),
        "injects": [
            {
                "name": i.name,
                "send_at": getattr(i, "send_at", None),
                "sent_at": getattr(i, "sent_at", None),
                "event_uuid": getattr(i, "event_uuid", None),
                "state": _inject_state(i),
            }
            for i in exercises.injects(session, exercise)
        ],
    }


def exercise_report_page(session: Session, *, uuid: str) -> dict[str, Any]:
    """The after-action report as ``hub.exercises.report`` makes it, with every section
    shown (lists of rows as tables, the rest as facts) and time to receipt drawn."""
    exercise = exercises.get(session, uuid)
    data = exercise_report.report(session, exercise)
    facts = {k: v for k, v in data.items() if not isinstance(v, list | dict)}
    sections = []
    for name, value in data.items():
        if isinstance(value, dict):
            sections.append({"name": name, "columns": ["key", "value"], "rows": _pairs(value)})
        elif isinstance(value, list):
            rows = [r if isinstance(r, dict) else {"value": r} for r in value]
            columns: list[str] = []
            for row in rows:
                columns += [c for c in row if c not in columns]
            sections.append({"name": name, "columns": columns, "rows": rows})
    return {
        "exercise": exercise,
        "facts": facts,
        "sections": sections,
        "chart": receipt_chart(data.get("lines") or []),
    }


def _pairs(value: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in value.items()]


def receipt_chart(lines: list[Any]) -> dict[str, Any]:
    """Horizontal bars of time to receipt per inject and participant (inline SVG, no
    script): one group per inject, one bar per participant; a participant that did not
    receive gets a marker instead of a bar."""
    rows = [line for line in lines if isinstance(line, dict)]
    delays = [
        float(r["delay_seconds"])
        for r in rows
        if isinstance(r.get("delay_seconds"), int | float) and r.get("status") != "source"
    ]
    top = max([1.0, *delays])
    label_w, bar_w, bar_h, gap = 260, 420, 16, 4
    y, bars, groups = 24, [], []
    by_inject: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        name = str(r.get("inject") or r.get("event_uuid") or "?")
        by_inject.setdefault(name, []).append(r)
    for name, members in by_inject.items():
        groups.append({"name": name[:60], "y": y + 12})
        y += 20
        for r in members:
            status = str(r.get("status") or "")
            delay = r.get("delay_seconds")
            width = 0.0
            if isinstance(delay, int | float) and status != "source":
                width = max(2.0, round(float(delay) / top * bar_w, 1))
            bars.append(
                {
                    "label": str(r.get("partner_name") or r.get("partner_uuid") or "?")[:40],
                    "y": y,
                    "width": width,
                    "status": status,
                    "delay": _duration(delay),
                }
            )
            y += bar_h + gap
        y += 8
    return {
        "width": label_w + bar_w + 140,
        "height": y + 24,
        "label_w": label_w,
        "bar_w": bar_w,
        "bar_h": bar_h,
        "top": _duration(top),
        "groups": groups,
        "bars": bars,
    }


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return ""
    s = float(seconds)
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"

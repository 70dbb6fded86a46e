"""The console's pages and forms at /console/ (server-rendered, no script).

The network's own pages need a session of an operator or auditor key; every form (POST)
needs the session's CSRF token and, for changes, an operator key. A partner key opens only
the incident and knowledge pages (``hub.console.function_pages``); a sync or exercise key
cannot sign in. Changes go through the services the REST API uses, as the
signed-in key, so the audit log names the same actor either way.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import anyio.to_thread
from sqlalchemy.orm import Session as DbSession
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from hub.audit import search
from hub.auth import service as auth
from hub.auth.principal import Principal
from hub.connections import service as connections
from hub.console import function_pages, functions, views
from hub.console.access import sign_in, sign_in_form, sign_out
from hub.console.web import (
    HEADERS,
    HERE,
    STAFF,
    SignInNeeded,
    act,
    allowed,
    download,
    enum_of,
    error_page,
    maker_of,
    principal_of,
    session_of,
    settings_of,
    to_sign_in,
    view,
)
from hub.coverage import service as coverage
from hub.db import session_scope
from hub.errors import HubError, InvalidField
from hub.intel import quarantine_decisions as quarantine
from hub.partners import service as partners
from hub.routing import runtime_of
from hub.vocabulary import NetworkFunction, PartnerStatus, Region, Sector, Tier

AUDIT_FILTERS = ("action", "actor", "recipient", "item", "channel", "decision", "since", "until")


async def overview(request: Request) -> Response:
    return await view(request, "overview.html", views.overview)


async def coverage_page(request: Request) -> Response:
    q = request.query_params

    def load(db: DbSession) -> dict[str, Any]:
        as_of = coverage.parse_as_of(q.get("as_of"))
        status = enum_of(PartnerStatus, q.get("status"), "status") or PartnerStatus.ACTIVE
        tier = enum_of(Tier, q.get("tier"), "tier")
        return views.coverage_page(db, as_of=as_of, status=status, tier=tier)

    return await view(request, "coverage.html", load)


async def coverage_csv(request: Request) -> Response:
    def make(db: DbSession) -> tuple[str, str]:
        q = request.query_params
        report = coverage.registered(
            db,
            as_of=coverage.parse_as_of(q.get("as_of")),
            status=enum_of(PartnerStatus, q.get("status"), "status") or PartnerStatus.ACTIVE,
            tier=enum_of(Tier, q.get("tier"), "tier"),
        )
        return coverage.to_csv(report), f"coverage-{report.as_of}.csv"

    return await download(request, make)


async def audit_csv(request: Request) -> Response:
    """The auditor's export (``hub.audit.search``), as the REST export answers it for the
    same filters: recorded (``audit.export``, as the signed-in key) and committed before
    the first byte, pinned to the latest signed checkpoint, streamed a chunk at a time."""
    session = session_of(request)
    if session is None:
        return to_sign_in(request)

    def work() -> Response:
        try:
            filters = search.parse_filters(request.query_params)
            with session_scope(maker_of(request, write=True)) as db:
                principal = principal_of(db, request, session)
                allowed(principal, STAFF)
                export = search.start_export(db, filters, actor=principal.actor, fmt="csv")
        except SignInNeeded:
            return to_sign_in(request, ended=True)
        except HubError as err:
            return error_page(request, err)
        rows = search.export_rows(runtime_of(request).sessions, filters, export)
        return StreamingResponse(
            search.as_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={
                **HEADERS,
                **search.export_headers(export, "csv"),
                "Content-Disposition": 'attachment; filename="audit.csv"',
            },
        )

    return await anyio.to_thread.run_sync(work)


async def coverage_cell(request: Request) -> Response:
    q = request.query_params

    def load(db: DbSession) -> dict[str, Any]:
        as_of = coverage.parse_as_of(q.get("as_of"))
        function = enum_of(NetworkFunction, q.get("function"), "function")
        sector = enum_of(Sector, q.get("sector"), "sector")
        region = enum_of(Region, q.get("region"), "region")
        found = coverage.cell_partners(
            db,
            as_of=as_of,
            function=function,
            sector=sector,
            region=region,
            status=enum_of(PartnerStatus, q.get("status"), "status") or PartnerStatus.ACTIVE,
            tier=enum_of(Tier, q.get("tier"), "tier"),
        )
        return {"cell": found}

    return await view(request, "cell.html", load)


async def partner_list(request: Request) -> Response:
    q = request.query_params

    def load(db: DbSession) -> dict[str, Any]:
        filters = {
            "status": enum_of(PartnerStatus, q.get("status"), "status"),
            "sector": enum_of(Sector, q.get("sector"), "sector"),
            "function": enum_of(NetworkFunction, q.get("function"), "function"),
            "region": enum_of(Region, q.get("region"), "region"),
        }
        rows = views.partner_list(db, q=q.get("q", "")[:200], filters=filters)
        return {
            "partners": rows,
            "q": q.get("q", ""),
            "filters": {k: (v.value if v else "") for k, v in filters.items()},
            "options": {
                "status": [s.value for s in PartnerStatus],
                "sector": [s.value for s in Sector],
                "function": [f.value for f in NetworkFunction],
                "region": [r.value for r in Region],
            },
        }

    return await view(request, "partners.html", load)


async def partner_page(request: Request) -> Response:
    ref = request.path_params["uuid"]
    return await view(request, "partner.html", lambda db: views.partner_page(db, ref=ref))


async def partner_status(request: Request) -> Response:
    ref = request.path_params["uuid"]

    def action(db: DbSession, who: Principal, form: dict[str, str]) -> str:
        partner = partners.get(db, ref=ref)
        status = enum_of(PartnerStatus, form.get("status"), "status")
        if status is None:
            raise InvalidField("choose a status", field="status")
        reason = form.get("reason", "").strip()[:2000] or None
        partners.change_status(db, partner=partner, status=status, reason=reason, actor=who.actor)
        return f"{partner.name} is now {status.value}"

    return await act(request, action, back=f"/console/partners/{quote(ref)}")


async def key_revoke(request: Request) -> Response:
    ref, key_uuid = request.path_params["uuid"], request.path_params["key_uuid"]

    def action(db: DbSession, who: Principal, form: dict[str, str]) -> str:
        partner = partners.get(db, ref=ref)
        record = auth.get_key(db, key_uuid=key_uuid, partner=partner)
        auth.revoke_key(db, record=record, actor=who.actor)
        return f"key …{record.key_hint} of {partner.name} revoked"

    return await act(request, action, back=f"/console/partners/{quote(ref)}")


async def quarantine_page(request: Request) -> Response:
    return await view(request, "quarantine.html", views.quarantine_page)


async def quarantine_release(request: Request) -> Response:
    uuid = request.path_params["uuid"]
    policy = runtime_of(request).policy

    def action(db: DbSession, who: Principal, form: dict[str, str]) -> str:
        label = form.get("label") or None
        if label is not None and label not in quarantine.LABELS:
            raise InvalidField(f"label: unknown TLP label {label[:20]!r}", field="label")
        reason = form.get("reason", "").strip()[:2000]
        if not reason:
            raise InvalidField("a reason is required", field="reason")
        item, outcomes = quarantine.release(
            db, uuid=uuid, label=label, reason=reason, actor=who.actor, policy=policy
        )
        return f"released {item.item_uuid} as TLP:{item.decision_label}"

    return await act(request, action, back="/console/quarantine")


async def quarantine_reject(request: Request) -> Response:
    uuid = request.path_params["uuid"]

    def action(db: DbSession, who: Principal, form: dict[str, str]) -> str:
        reason = form.get("reason", "").strip()[:2000]
        if not reason:
            raise InvalidField("a reason is required", field="reason")
        item = quarantine.reject(db, uuid=uuid, reason=reason, actor=who.actor)
        return f"rejected {item.item_uuid}"

    return await act(request, action, back="/console/quarantine")


async def connections_page(request: Request) -> Response:
    return await view(request, "connections.html", views.connections_page)


async def connection_requeue(request: Request) -> Response:
    ref = request.path_params["uuid"]

    def action(db: DbSession, who: Principal, form: dict[str, str]) -> str:
        connection = connections.get(db, ref=ref)
        job, pushes = connections.requeue(db, connection=connection, actor=who.actor)
        return f"{connection.name}: run requeued, {pushes} push(es) sent again"

    return await act(request, action, back="/console/connections")


async def notifications_page(request: Request) -> Response:
    status = request.query_params.get("status") or None
    return await view(
        request,
        "notifications.html",
        lambda db: {**views.notifications_page(db, status=status), "status": status or ""},
    )


async def audit_page(request: Request) -> Response:
    q = request.query_params

    def load(db: DbSession) -> dict[str, Any]:
        filters = search.parse_filters(q)
        data = views.audit_page(
            db, filters=filters, verify=q.get("verify") == "1", settings=settings_of(request)
        )
        shown = {name: q.get(name, "") for name in AUDIT_FILTERS}
        return {**data, "filters": shown, "export_query": urlencode(filters.as_dict())}

    return await view(request, "audit.html", load)


async def item_page(request: Request) -> Response:
    uuid = request.path_params["uuid"].lower()
    partner = request.query_params.get("partner") or None
    policy = runtime_of(request).policy

    def load(db: DbSession) -> dict[str, Any]:
        page = views.item_page(
            db, event_uuid=uuid, partner=partner, policy=policy, actor="console:explain"
        )
        return {**page, "used_by": functions.used_by_item(db, uuid)}  # lineage forward

    return await view(request, "item.html", load)


async def stylesheet(request: Request) -> Response:
    return Response(
        (HERE / "templates" / "console.css").read_text(),
        media_type="text/css",
        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


routes = [
    *function_pages.routes,
    Route("/", overview, methods=["GET"], name="console"),
    Route("/console.css", stylesheet, methods=["GET"]),
    Route("/sign-in", sign_in_form, methods=["GET"]),
    Route("/sign-in", sign_in, methods=["POST"]),
    Route("/sign-out", sign_out, methods=["POST"]),
    Route("/coverage", coverage_page, methods=["GET"]),
    Route("/coverage.csv", coverage_csv, methods=["GET"]),
    Route("/coverage/cell", coverage_cell, methods=["GET"]),
    Route("/partners", partner_list, methods=["GET"]),
    Route("/partners/{uuid}", partner_page, methods=["GET"]),
    Route("/partners/{uuid}/status", partner_status, methods=["POST"]),
    Route("/partners/{uuid}/keys/{key_uuid}/revoke", key_revoke, methods=["POST"]),
    Route("/quarantine", quarantine_page, methods=["GET"]),
    Route("/quarantine/{uuid}/release", quarantine_release, methods=["POST"]),
    Route("/quarantine/{uuid}/reject", quarantine_reject, methods=["POST"]),
    Route("/connections", connections_page, methods=["GET"]),
    Route("/connections/{uuid}/requeue", connection_requeue, methods=["POST"]),
    Route("/notifications", notifications_page, methods=["GET"]),
    Route("/audit", audit_page, methods=["GET"]),
    Route("/audit.csv", audit_csv, methods=["GET"]),
    Route("/items/{uuid}", item_page, methods=["GET"]),
]

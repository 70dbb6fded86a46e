"""The console's pages and forms of incident handling, knowledge exchange and exercises.

Incident and knowledge pages serve operators, auditors and partners, each as its key: the
services decide what a case, a product or a credit shows to whom (and record the views they
record), exactly as over REST. Exercise pages serve operators and auditors; their forms,
operators (the controllers).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
from pydantic import ValidationError
from sqlalchemy.orm import Session as DbSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.auth.principal import Principal
from hub.console import functions
from hub.console.web import STAFF, Form, act, download, view_as
from hub.errors import InvalidField, NotFound
from hub.exercises import report as exercise_report
from hub.exercises import service as exercises
from hub.incidents import cases, service
from hub.incidents.schemas import CaseClose, CaseCreate, CaseLink, CaseReferral, IncidentSupportBody
from hub.intel.submission import submitting_partner
from hub.knowledge import lessons
from hub.knowledge import repository as knowledge_rows
from hub.knowledge import service as knowledge
from hub.partners import service as partners
from hub.routing import runtime_of
from hub.vocabulary import Role

READERS = frozenset({*STAFF, Role.PARTNER})  # incident and knowledge pages
ACTORS = frozenset({Role.OPERATOR, Role.PARTNER})  # their forms


def _valid(model: Any, data: dict[str, Any]) -> Any:
    """A form as the REST body it stands for; a refusal names the field as REST does."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise InvalidField(f"{field}: {first['msg']}", field=field) from None


def _text(form: Form, name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


# --- incidents -------------------------------------------------------------------------------


async def case_list(request: Request) -> Response:
    policy = runtime_of(request).policy
    return await view_as(
        request,
        "incidents.html",
        lambda db, who: functions.case_list(db, who=who, policy=policy),
        roles=READERS,
    )


async def case_open(request: Request) -> Response:
    def action(db: DbSession, who: Principal, form: Form) -> tuple[str, str]:
        body = _valid(
            CaseCreate,
            {
                "title": form.get("title", ""),
                "sector": form.get("sector", ""),
                "tlp": form.get("tlp", ""),
                "description": form.get("description", ""),
            },
        )
        case = cases.open_case(db, who=who, body=body)
        return f"case opened: {case.title}", f"/console/incidents/{case.uuid}"

    return await act(request, action, back="/console/incidents", roles=ACTORS)


async def case_page(request: Request) -> Response:
    uuid = request.path_params["uuid"]
    policy = runtime_of(request).policy
    return await view_as(
        request,
        "incident.html",
        lambda db, who: functions.case_page(db, who=who, uuid=uuid, policy=policy),
        roles=ACTORS,  # a case is a closed group: auditors do not read it (as over REST)
        write=True,  # the case is shown as cases.read records it (incidents.case.view)
    )


def _case_action(request: Request, do: Any) -> Any:
    uuid = request.path_params["uuid"]
    policy = runtime_of(request).policy

    def action(db: DbSession, who: Principal, form: Form) -> str | tuple[str, str]:
        case = cases.visible(db, who=who, uuid=uuid, policy=policy)
        return do(db, who, case, form, policy)  # type: ignore[no-any-return]

    return act(request, action, back=f"/console/incidents/{quote(uuid)}", roles=ACTORS)


async def case_link(request: Request) -> Response:
    def do(db: DbSession, who: Principal, case: Any, form: Form, policy: Any) -> str:
        body = _valid(CaseLink, {"event_uuid": form.get("event_uuid", "").strip()})
        cases.link_item(db, who=who, case=case, event_uuid=str(body.event_uuid), policy=policy)
        return f"event {body.event_uuid} linked"

    return await _case_action(request, do)  # type: ignore[no-any-return]


async def case_refer(request: Request) -> Response:
    def do(db: DbSession, who: Principal, case: Any, form: Form, policy: Any) -> str:
        ref = form.get("to_partner", "").strip()
        try:
            target = partners.get(db, ref=ref)
        except NotFound:
            raise InvalidField("no such partner", field="to_partner") from None
        body = _valid(
            CaseReferral,
            {
                "referred": form.get("referred", ""),
                "to_partner": target.uuid,
                "note": _text(form, "note"),
            },
        )
        cases.refer(db, who=who, case=case, body=body, policy=policy)
        return f"referral to {target.name} recorded"

    return await _case_action(request, do)  # type: ignore[no-any-return]


async def case_close(request: Request) -> Response:
    def do(db: DbSession, who: Principal, case: Any, form: Form, policy: Any) -> str:
        body = _valid(CaseClose, {"lessons_learned": form.get("lessons_learned", "")})
        cases.close(db, who=who, case=case, body=body)
        return "case closed with its lessons learned"

    return await _case_action(request, do)  # type: ignore[no-any-return]


async def case_to_product(request: Request) -> Response:
    """The case's lessons learned as a knowledge product draft (then reviewed, published)."""

    def do(db: DbSession, who: Principal, case: Any, form: Form, policy: Any) -> tuple[str, str]:
        given = cases.lessons_of(db, who=who, case=case, policy=policy)
        product = lessons.draft_from_case(
            db,
            who=who,
            owner=submitting_partner(db, who),
            case=lessons.CaseLessons(**given),
            kind=form.get("kind") or "best-practice",
            label=_text(form, "tlp"),
            title=_text(form, "title"),
            name_opener=form.get("name_opener") == "on",
            policy=policy,
        )
        return "knowledge product drafted from the lessons", f"/console/knowledge/{product.uuid}"

    return await _case_action(request, do)  # type: ignore[no-any-return]


async def support_list(request: Request) -> Response:
    """Staff: every partner's entry. A partner: its own (redirected there by its link)."""
    return await view_as(
        request, "support_list.html", lambda db, who: functions.support_list(db), roles=STAFF
    )


async def my_support(request: Request) -> Response:
    return await view_as(
        request,
        "support.html",
        lambda db, who: functions.support_page(db, who=who, ref=who.partner_uuid),
        roles=READERS,
    )


async def support_page(request: Request) -> Response:
    ref = request.path_params["uuid"]
    return await view_as(
        request,
        "support.html",
        lambda db, who: functions.support_page(db, who=who, ref=ref),
        roles=READERS,
    )


async def support_set(request: Request) -> Response:
    ref = request.path_params["uuid"]

    def action(db: DbSession, who: Principal, form: Form) -> str:
        partner = partners.get(db, ref=ref)
        if who.role is not Role.OPERATOR and partner.id != who.partner_id:
            raise NotFound(f"no partner {ref}")
        body = _valid(
            IncidentSupportBody,
            {
                "services": form.every("services"),
                "audience": form.every("audience"),
                "sectors": form.every("sectors"),
                "regions": form.every("regions"),
                "availability": form.get("availability", ""),
                "contact": {
                    "name": form.get("contact_name", ""),
                    "email": form.get("contact_email", ""),
                    "phone": form.get("contact_phone", ""),
                },
                "public": form.get("public") == "on",
            },
        )
        service.put_support(db, partner=partner, body=body, actor=who.actor)
        return f"incident support of {partner.name} saved"

    return await act(request, action, back=f"/console/incidents/support/{quote(ref)}", roles=ACTORS)


async def obligations_page(request: Request) -> Response:
    return await view_as(
        request,
        "obligations.html",
        lambda db, who: functions.obligations_page(db),
        roles=READERS,
    )


# --- knowledge -------------------------------------------------------------------------------


async def product_list(request: Request) -> Response:
    policy = runtime_of(request).policy
    return await view_as(
        request,
        "knowledge.html",
        lambda db, who: functions.product_list(db, who=who, policy=policy),
        roles=READERS,
        write=True,  # the received products are a page the release path records
    )


async def product_page(request: Request) -> Response:
    uuid = request.path_params["uuid"]
    policy = runtime_of(request).policy
    raw = request.query_params.get("version")
    version = None
    if raw:
        if not raw.isdigit() or not 1 <= len(raw) <= 6:
            return await view_as(request, "product.html", _bad_version, roles=READERS)
        version = int(raw)
    return await view_as(
        request,
        "product.html",
        lambda db, who: functions.product_page(
            db, who=who, uuid=uuid, version=version, policy=policy
        ),
        roles=READERS,
        write=True,  # to a partner that does not own it, a delivery the release path records
    )


def _bad_version(db: DbSession, who: Principal) -> dict[str, Any]:
    raise InvalidField("version must be a whole number", field="version")


def _product_action(request: Request, do: Any) -> Any:
    uuid = request.path_params["uuid"]
    policy = runtime_of(request).policy

    def action(db: DbSession, who: Principal, form: Form) -> str:
        product = knowledge_rows.product_by_uuid(db, uuid)
        if product is None:
            raise NotFound(f"no knowledge product {uuid}")
        return do(db, who, product, form, policy)  # type: ignore[no-any-return]

    return act(request, action, back=f"/console/knowledge/{quote(uuid)}", roles=ACTORS)


async def product_review(request: Request) -> Response:
    def do(db: DbSession, who: Principal, product: Any, form: Form, policy: Any) -> str:
        note = (_text(form, "note") or "")[:2000] or None
        knowledge.review(db, who=who, product=product, note=note)
        return f"version {product.version} reviewed"

    return await _product_action(request, do)  # type: ignore[no-any-return]


async def product_publish(request: Request) -> Response:
    def do(db: DbSession, who: Principal, product: Any, form: Form, policy: Any) -> str:
        knowledge.publish(db, who=who, product=product, policy=policy)
        return f"version {product.version} published"

    return await _product_action(request, do)  # type: ignore[no-any-return]


# --- exercises -------------------------------------------------------------------------------


async def exercise_list(request: Request) -> Response:
    return await view_as(
        request, "exercises.html", lambda db, who: functions.exercise_list(db), roles=STAFF
    )


async def exercise_page(request: Request) -> Response:
    uuid = request.path_params["uuid"]
    return await view_as(
        request,
        "exercise.html",
        lambda db, who: functions.exercise_page(db, uuid=uuid),
        roles=STAFF,
    )


async def exercise_close(request: Request) -> Response:
    uuid = request.path_params["uuid"]
    policy = runtime_of(request).policy

    def action(db: DbSession, who: Principal, form: Form) -> str:
        exercise = exercises.get(db, uuid)
        reason = (_text(form, "reason") or "")[:2000]
        if not reason:
            raise InvalidField("a reason is required", field="reason")
        exercises.close(db, exercise, actor=who.actor, reason=reason, policy=policy)
        return f"{exercise.name} closed: its items are withdrawn from every participant"

    return await act(request, action, back=f"/console/exercises/{quote(uuid)}")


async def exercise_report_page(request: Request) -> Response:
    uuid = request.path_params["uuid"]
    return await view_as(
        request,
        "exercise_report.html",
        lambda db, who: functions.exercise_report_page(db, uuid=uuid),
        roles=STAFF,
        write=True,  # the report brings the release index up to date first
    )


async def exercise_report_json(request: Request) -> Response:
    uuid = request.path_params["uuid"]

    def make(db: DbSession) -> tuple[str, str]:
        data = exercise_report.report(db, exercises.get(db, uuid))
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode(), f"report-{uuid}.json"

    return await download(request, make, media_type="application/json", write=True)


async def exercise_report_csv(request: Request) -> Response:
    uuid = request.path_params["uuid"]

    def make(db: DbSession) -> tuple[str, str]:
        found = exercise_report.lines(db, exercises.get(db, uuid))
        return exercise_report.to_csv(found), f"report-{uuid}.csv"

    return await download(request, make, write=True)


routes = [
    Route("/incidents", case_list, methods=["GET"]),
    Route("/incidents", case_open, methods=["POST"]),
    Route("/incidents/support", support_list, methods=["GET"]),
    Route("/incidents/support/mine", my_support, methods=["GET"]),
    Route("/incidents/support/{uuid}", support_page, methods=["GET"]),
    Route("/incidents/support/{uuid}", support_set, methods=["POST"]),
    Route("/incidents/obligations", obligations_page, methods=["GET"]),
    Route("/incidents/{uuid}", case_page, methods=["GET"]),
    Route("/incidents/{uuid}/items", case_link, methods=["POST"]),
    Route("/incidents/{uuid}/referrals", case_refer, methods=["POST"]),
    Route("/incidents/{uuid}/close", case_close, methods=["POST"]),
    Route("/incidents/{uuid}/knowledge", case_to_product, methods=["POST"]),
    Route("/knowledge", product_list, methods=["GET"]),
    Route("/knowledge/{uuid}", product_page, methods=["GET"]),
    Route("/knowledge/{uuid}/review", product_review, methods=["POST"]),
    Route("/knowledge/{uuid}/publish", product_publish, methods=["POST"]),
    Route("/exercises", exercise_list, methods=["GET"]),
    Route("/exercises/{uuid}", exercise_page, methods=["GET"]),
    Route("/exercises/{uuid}/close", exercise_close, methods=["POST"]),
    Route("/exercises/{uuid}/report", exercise_report_page, methods=["GET"]),
    Route("/exercises/{uuid}/report.json", exercise_report_json, methods=["GET"]),
    Route("/exercises/{uuid}/report.csv", exercise_report_csv, methods=["GET"]),
]

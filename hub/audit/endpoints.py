"""Audit proofs (DESIGN.md §2 "Audit proofs"): the verifier key (public), signed checkpoints
(any key), an entry's exact bytes and its inclusion proof (partners: entries about their own
organisation only), consistency proofs between two tree sizes (any key). The auditor's API
(operator, auditor): search, export and summaries of the log (``hub.audit.search``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from hub.audit import proofs, schemas, search, tree
from hub.audit.note import NoteError
from hub.auth.principal import Principal
from hub.errors import HubError, InvalidField, NotAcceptable, NotFound
from hub.responses import JSONResponse
from hub.routing import (
    AnyKey,
    HubRoute,
    OperatorOrAuditor,
    PageCursor,
    PageLimit,
    SessionDep,
    SettingsDep,
    public,
    read_page,
    runtime_of,
)
from hub.schemas import decode_cursor, encode_cursor
from hub.vocabulary import Role

TEXT = "text/plain; charset=utf-8"


class TextRoute(HubRoute):
    """A route that answers ``text/plain`` (a signed note or a key), errors in REST JSON."""

    def check_media(self, request: Request) -> None:
        accept = request.headers.get("accept")
        if accept and not _accepts_text(accept):
            raise NotAcceptable(f"this route answers text/plain, not {accept!r}")


def _accepts_text(accept: str) -> bool:
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("*/*", "text/*", "text/plain"):
            return True
    return False


class ExportRoute(HubRoute):
    """The export answers JSON lines or CSV (``format``), errors in REST JSON."""

    def check_media(self, request: Request) -> None:
        accept = request.headers.get("accept")
        if accept and not _accepts(accept, "application/x-ndjson", "application/json", "text/csv"):
            raise NotAcceptable(f"this route answers JSON lines or CSV, not {accept!r}")


def _accepts(accept: str, *media_types: str) -> bool:
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("*/*", *media_types) or (
            media.endswith("/*") and any(m.startswith(media[:-1]) for m in media_types)
        ):
            return True
    return False


router = APIRouter(prefix="/api/v1/audit", tags=["audit"], route_class=HubRoute)
text_router = APIRouter(prefix="/api/v1/audit", tags=["audit"], route_class=TextRoute)
admin_router = APIRouter(prefix="/api/v1/admin/audit", tags=["audit"], route_class=HubRoute)
export_router = APIRouter(prefix="/api/v1/admin/audit", tags=["audit"], route_class=ExportRoute)


def _org(who: Principal) -> str | None:
    """Whose entries the caller may see: all (operator, auditor) or its organisation's."""
    return None if who.role in (Role.OPERATOR, Role.AUDITOR) else who.partner_uuid


@text_router.get(
    "/verifier",
    dependencies=[Depends(public)],
    response_class=Response,
    responses={404: {"description": "No audit signing key is configured"}},
)
def verifier(settings: SettingsDep) -> Response:
    """The C2SP signed-note verifier key of the hub's checkpoints:
    ``<name>+<hex key id>+<base64(0x01 ‖ Ed25519 public key)>``."""
    try:
        key = tree.configured_verifier(settings)
    except NoteError as err:  # the operator's configuration, not the caller's mistake
        raise HubError(f"the audit verifier key cannot be used: {err}") from None
    if key is None:
        raise NotFound("no audit signing key is configured")
    return Response(f"{key}\n", media_type=TEXT)


@text_router.get(
    "/checkpoint",
    response_class=Response,
    responses={404: {"description": "No checkpoint signed yet, or none of that size"}},
)
@read_page
def checkpoint(
    session: SessionDep,
    who: AnyKey,
    size: Annotated[int | None, Query(description="the checkpoint of this tree size")] = None,
) -> Response:
    """The latest signed checkpoint (or the one of ``size`` entries), as a C2SP signed note."""
    return Response(proofs.checkpoint(session, size=size).note, media_type=TEXT)


@router.get("/entries/{seq}", response_model=schemas.Entry)
@read_page
def entry(seq: int, session: SessionDep, who: AnyKey) -> Response:
    """``{"seq", "leaf"}``: the base64 of the exact bytes the entry's leaf hashes."""
    return JSONResponse(
        proofs.entry(session, seq=seq, org=_org(who), exercise=who.exercise_id).as_dict()
    )


@router.get(
    "/proofs/inclusion",
    response_model=schemas.InclusionProof,
    responses={404: {"description": "No such entry for the caller, or no checkpoint yet"}},
)
@read_page
def inclusion_proof(
    session: SessionDep,
    who: AnyKey,
    seq: Annotated[int, Query(description="the entry's sequence number")],
    size: Annotated[
        int | None, Query(description="tree size (default: the latest checkpoint's)")
    ] = None,
) -> Response:
    """``{"leaf_index", "tree_size", "hashes"}``: RFC 9162 inclusion proof of the entry."""
    return JSONResponse(
        proofs.inclusion(session, seq=seq, size=size, org=_org(who), exercise=who.exercise_id)
    )


@router.get("/proofs/consistency", response_model=schemas.ConsistencyProof)
@read_page
def consistency_proof(
    session: SessionDep,
    who: AnyKey,
    old: Annotated[int, Query(alias="from", description="the earlier tree size")],
    new: Annotated[int, Query(alias="to", description="the later tree size")],
) -> Response:
    """``{"from", "to", "hashes"}``: RFC 9162 consistency proof between two tree sizes."""
    return JSONResponse(proofs.consistency(session, old=old, new=new))


# --- the auditor's API ------------------------------------------------------------------------

Text = Annotated[str | None, Query(max_length=255)]


def _filters(
    since: Annotated[datetime | None, Query(description="recorded at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="recorded before (ISO 8601)")] = None,
    action: Text = None,
    actor: Annotated[str | None, Query(max_length=255, description="e.g. key:<uuid>")] = None,
    recipient: Annotated[str | None, Query(max_length=36, description="organisation uuid")] = None,
    item: Annotated[
        str | None, Query(max_length=64, description="event uuid (deliveries listing it too)")
    ] = None,
    channel: Text = None,
    decision: Literal["allow", "deny"] | None = None,
) -> search.Filters:
    return search.Filters(since, until, action, actor, recipient, item, channel, decision)


FiltersDep = Annotated[search.Filters, Depends(_filters)]


@admin_router.get("/entries", response_model=schemas.EntryPage)
def search_entries(
    session: SessionDep,
    who: OperatorOrAuditor,
    filters: FiltersDep,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Response:
    """Entries matching every filter given, newest first, ``{"items", "next_cursor"}``.
    The search itself is recorded (``audit.search``)."""
    before = decode_cursor(cursor, keys=("seq",))["seq"] if cursor else None
    if before is not None and (not isinstance(before, int) or isinstance(before, bool)):
        raise InvalidField("cursor is not one this API handed out", field="cursor")
    page = search.search(session, filters, actor=who.actor, limit=limit, before=before)
    following = page["next_before"]
    return JSONResponse(
        {
            "items": page["items"],
            "next_cursor": encode_cursor({"seq": following}) if following else None,
        }
    )


@export_router.get("/export", response_class=Response)
def export_entries(
    request: Request,
    session: SessionDep,
    who: OperatorOrAuditor,
    filters: FiltersDep,
    format: Literal["jsonl", "csv"] = "jsonl",
) -> Response:
    """Every matching entry the latest checkpoint covers, oldest first, each with its exact
    leaf bytes: JSON lines (a first line ``{"checkpoint", "tree_size"}``) or CSV (the
    checkpoint in ``X-Hub-Audit-Checkpoint``, base64). Recorded (``audit.export``) and
    committed before the first byte; streamed a chunk at a time."""
    export = search.start_export(session, filters, actor=who.actor, fmt=format)
    rows = search.export_rows(runtime_of(request).sessions, filters, export)
    headers = search.export_headers(export, format)
    if format == "csv":
        return StreamingResponse(
            search.as_csv(rows), media_type="text/csv; charset=utf-8", headers=headers
        )
    return StreamingResponse(
        search.as_json_lines(export, rows), media_type="application/x-ndjson", headers=headers
    )


@admin_router.get("/summary", response_model=schemas.Summary)
def summary(
    session: SessionDep,
    who: OperatorOrAuditor,
    since: Annotated[datetime | None, Query(description="from (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="before (ISO 8601)")] = None,
) -> Response:
    """Items delivered and refused per partner, channel, label and day; refusals by reason."""
    return JSONResponse(search.summary(session, since=since, until=until, actor=who.actor))

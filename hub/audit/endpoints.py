"""Audit proofs (DESIGN.md §2 "Audit proofs"): the verifier key (public), signed checkpoints
(any key), an entry's exact bytes and its inclusion proof (partners: entries about their own
organisation only), consistency proofs between two tree sizes (any key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from hub.audit import proofs, tree
from hub.auth.principal import Principal
from hub.errors import NotAcceptable, NotFound
from hub.responses import JSONResponse
from hub.routing import AnyKey, HubRoute, SessionDep, SettingsDep, public, read_page
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


router = APIRouter(prefix="/api/v1/audit", tags=["audit"], route_class=HubRoute)
text_router = APIRouter(prefix="/api/v1/audit", tags=["audit"], route_class=TextRoute)


def _org(who: Principal) -> str | None:
    """Whose entries the caller may see: all (operator, auditor) or its organisation's."""
    return None if who.role in (Role.OPERATOR, Role.AUDITOR) else who.partner_uuid


@text_router.get("/verifier", dependencies=[Depends(public)], response_class=Response)
def verifier(settings: SettingsDep) -> Response:
    """The C2SP signed-note verifier key of the hub's checkpoints:
    ``<name>+<hex key id>+<base64(0x01 ‖ Ed25519 public key)>``."""
    key = tree.configured_verifier(settings)
    if key is None:
        raise NotFound("no audit signing key is configured")
    return Response(f"{key}\n", media_type=TEXT)


@text_router.get("/checkpoint", response_class=Response)
@read_page
def checkpoint(
    session: SessionDep,
    who: AnyKey,
    size: Annotated[int | None, Query(description="the checkpoint of this tree size")] = None,
) -> Response:
    """The latest signed checkpoint (or the one of ``size`` entries), as a C2SP signed note."""
    return Response(proofs.checkpoint(session, size=size).note, media_type=TEXT)


@router.get("/entries/{seq}")
@read_page
def entry(seq: int, session: SessionDep, who: AnyKey) -> Response:
    """``{"seq", "leaf"}``: the base64 of the exact bytes the entry's leaf hashes."""
    return JSONResponse(proofs.entry(session, seq=seq, org=_org(who)).as_dict())


@router.get("/proofs/inclusion")
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
    return JSONResponse(proofs.inclusion(session, seq=seq, size=size, org=_org(who)))


@router.get("/proofs/consistency")
@read_page
def consistency_proof(
    session: SessionDep,
    who: AnyKey,
    old: Annotated[int, Query(alias="from", description="the earlier tree size")],
    new: Annotated[int, Query(alias="to", description="the later tree size")],
) -> Response:
    """``{"from", "to", "hashes"}``: RFC 9162 consistency proof between two tree sizes."""
    return JSONResponse(proofs.consistency(session, old=old, new=new))

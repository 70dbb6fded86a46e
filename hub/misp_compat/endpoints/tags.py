"""``/misp`` tags (reference §7.3): attach and remove a tag on one of the caller's elements (a
TLP tag may only make it stricter), and the tag registry the hub does not keep (an empty
index, ``tags/add`` answered as given)."""

from __future__ import annotations

from fastapi import Request, Response

from hub.errors import InvalidField, recorded
from hub.misp_compat import edits, schemas
from hub.misp_compat.endpoints.routes import CallerDep, MispRouter, filters, json_body, saved, write
from hub.responses import JSONResponse
from hub.routing import PartnerKey, SessionDep, SettingsDep

router = MispRouter()


@router.misp_route(
    ["POST"],
    "/tags/attachTagToObject",
    "/tags/attach_tag_to_object",
    tail=True,
    model=schemas.MispSaved,
    body=schemas.TAGGING,
    responses=schemas.SAVE_REFUSED,
)
def attach_tag(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """A tag on one of the caller's events or attributes (by uuid); TLP tags may only make
    an element stricter; a local tag is accepted and kept nowhere (it never leaves)."""
    body = filters(request)

    def do(w: edits.Writer) -> Response:
        tagged = edits.attach_tag(session, w, body)
        if tagged.written is not None and tagged.written.held is not None:
            raise recorded(tagged.written.held)
        tag = str(body.get("tag"))
        if tagged.written is None:
            return saved(
                request,
                f"Local tag {tag} not kept: local tags stay on your own MISP "
                f"({tagged.kind}({tagged.public_id})).",
                check_publish=False,
            )
        return saved(
            request,
            f"Tag {tag} successfully attached to {tagged.kind}({tagged.public_id}).",
            check_publish=True,
        )

    return write(request, session, caller, settings, do, name="Could not attach Tag")


@router.misp_route(
    ["POST"],
    "/tags/removeTagFromObject",
    "/tags/remove_tag_from_object",
    tail=True,
    model=schemas.MispSaved,
    body=schemas.TAGGING,
    responses=schemas.SAVE_REFUSED,
)
def remove_tag(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    body = filters(request)

    def do(w: edits.Writer) -> Response:
        tagged = edits.remove_tag(session, w, body)
        if tagged.written is not None and tagged.written.held is not None:
            raise recorded(tagged.written.held)
        return saved(
            request,
            f"Tag {body.get('tag')} successfully removed from {tagged.kind}({tagged.public_id}).",
        )

    return write(request, session, caller, settings, do, name="Could not remove Tag")


@router.misp_route(["GET"], "/tags/index", tail=True, model=schemas.MispTagIndex)
def tag_index(who: PartnerKey) -> Response:
    """The hub keeps no tag registry (a tag exists on the elements that carry it, and any
    name can be attached): the list of defined tags is empty."""
    return JSONResponse({"Tag": []})


@router.misp_route(
    ["POST"], "/tags/add", tail=True, model=schemas.MispTagAnswer, body=schemas.TAG_IN
)
def add_tag(request: Request, who: PartnerKey) -> Response:
    """Tags need no creating on the hub: the tag is answered as given, nothing is stored."""
    body = json_body(request)
    if isinstance(body, dict) and isinstance(body.get("Tag"), dict):
        body = body["Tag"]
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise InvalidField("a tag needs a name", field="name")
    return JSONResponse(
        {
            "Tag": {
                "id": "0",
                "name": name.strip(),
                "colour": str(body.get("colour") or ""),
                "exportable": bool(body.get("exportable", True)),
                "hide_tag": False,
                "local_only": False,
            }
        }
    )

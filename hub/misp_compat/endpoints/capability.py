"""``/misp`` capability and connection test (reference §2.1, §7.2): what a MISP or PyMISP
reads before it pulls or pushes — the server version, the echo of "Test connection", the
calling key as a MISP user, the attribute type table."""

from __future__ import annotations

from fastapi import Request, Response

from hub.intel.validation import describe_types
from hub.misp_compat import schemas, service
from hub.misp_compat.endpoints.routes import MispRouter, json_body
from hub.responses import JSONResponse
from hub.routing import PartnerKey, SessionDep, SettingsDep, public_base_url
from hub.vocabulary import Role

router = MispRouter()


@router.misp_route(["GET"], "/servers/getVersion", model=schemas.MispVersion)
def get_version(session: SessionDep, who: PartnerKey, settings: SettingsDep) -> Response:
    """What a MISP reads before pulling or pushing (ServerSyncTool:465-501): the version
    (configured, HUB_MISP_VERSION; must be 2.x), whether this key may push, and that
    request bodies must not be compressed."""
    return JSONResponse(
        {
            "version": settings.misp_version,
            "pymisp_recommended_version": settings.misp_version,
            "perm_sync": who.role is Role.SYNC,
            "perm_sighting": True,
            "perm_galaxy_editor": False,
            "perm_analyst_data": False,
            "uuid": service.hub_org_uuid(session) or "",
            "request_encoding": [],
            "filter_sightings": True,
        }
    )


@router.misp_route(["POST"], "/servers/postTest", model=schemas.MispPostTest, body=schemas.ANY_JSON)
def post_test(request: Request, who: PartnerKey) -> Response:
    """The "Test connection" POST round trip: echo the body and the headers as received, so
    a proxy that rewrites them shows up (ServersController.php:1720-1748)."""
    body = json_body(request)
    return JSONResponse(
        {
            "body": body if isinstance(body, dict) else {},
            "headers": {
                "Content-type": request.headers.get("content-type", ""),
                "Accept": request.headers.get("accept", ""),
                "Authorization": "OK",
            },
        }
    )


@router.misp_route(["GET"], "/users/view/me", model=schemas.MispMe)
def view_me(request: Request, who: PartnerKey, settings: SettingsDep) -> Response:
    """The calling key as a MISP user (UsersController.php:46-104); PyMISP needs ``User``,
    ``Role`` and ``UserSetting`` to initialise."""
    sync = who.role is Role.SYNC
    host = public_base_url(request).split("//", 1)[-1].split("/")[0]
    org = {"id": str(who.partner_id), "name": who.partner_name, "uuid": who.partner_uuid}
    return JSONResponse(
        {
            "User": {
                "id": str(who.key_id),
                "email": f"{who.role.value}.{who.key_uuid}@{host.split(':')[0]}",
                "org_id": org["id"],
                "role_id": "5" if sync else "3",
                "disabled": False,
                "autoalert": False,
                "termsaccepted": True,
            },
            "Role": {
                "id": "5" if sync else "3",
                "name": "Sync user" if sync else "User",
                "perm_add": True,
                "perm_modify": True,
                "perm_modify_org": False,
                "perm_publish": True,
                "perm_delegate": False,
                "perm_sync": sync,
                "perm_admin": False,
                "perm_audit": False,
                "perm_auth": True,
                "perm_site_admin": False,
                "perm_regexp_access": False,
                "perm_tagger": True,
                "perm_template": False,
                "perm_sharing_group": False,
                "perm_tag_editor": False,
                "perm_sighting": True,
                "perm_object_template": False,
                "perm_galaxy_editor": False,
                "perm_analyst_data": False,
            },
            "UserSetting": {},
            "Organisation": {**org, "local": True},
        }
    )


@router.misp_route(["GET"], "/attributes/describeTypes", model=schemas.MispDescribeTypes)
def describe(who: PartnerKey) -> Response:
    """The attribute types the hub accepts: PyMISP's own describeTypes.json."""
    return JSONResponse({"result": describe_types()})

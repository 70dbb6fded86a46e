"""TAXII 2.1 endpoints (OASIS TAXII 2.1, 10 June 2021) under ``/taxii2/``, for partner keys.

Every response is ``application/taxii+json;version=2.1``; errors are TAXII error resources.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from hub.errors import NotFound, recorded
from hub.routing import (
    PartnerKey,
    PolicyDep,
    SessionDep,
    SettingsDep,
    body_of,
    public_base_url,
    read_page,
)
from hub.taxii import schemas, service, submissions
from hub.taxii.protocol import TAXII_MEDIA, TaxiiResponse, TaxiiRoute
from hub.taxii.query import MAX_LIMIT, Filters, page_size, parse_filters

router = APIRouter(
    prefix="/taxii2",
    tags=["taxii"],
    route_class=TaxiiRoute,
    default_response_class=TaxiiResponse,
)
ROOT = f"/{service.API_ROOT}"

AddedAfter = Annotated[str | None, Query(max_length=64, description="date_added after (RFC 3339)")]
MatchId = Annotated[str | None, Query(alias="match[id]", max_length=20000)]
MatchType = Annotated[str | None, Query(alias="match[type]", max_length=2000)]
MatchVersion = Annotated[str | None, Query(alias="match[version]", max_length=2000)]
MatchSpec = Annotated[str | None, Query(alias="match[spec_version]", max_length=100)]
Limit = Annotated[int | None, Query(description=f"page size (capped at {MAX_LIMIT})")]
Next = Annotated[str | None, Query(max_length=1000)]


@router.get("/", response_model=schemas.Discovery)
def discovery(request: Request, who: PartnerKey, settings: SettingsDep) -> Response:
    """Server discovery (TAXII 2.1 §4.1): the one API root."""
    return TaxiiResponse(
        service.discovery(base_url=public_base_url(request), org_name=settings.org_name)
    )


@router.get(ROOT + "/", response_model=schemas.ApiRoot)
def api_root(who: PartnerKey, settings: SettingsDep) -> Response:
    """API root information (TAXII 2.1 §4.2)."""
    return TaxiiResponse(service.api_root(max_content_length=settings.max_body_bytes))


@router.get(ROOT + "/status/{status_id}/", response_model=schemas.Status)
def get_status(status_id: str, session: SessionDep, who: PartnerKey) -> Response:
    """Status of an Add Objects request (TAXII 2.1 §4.3); only its submitter may read it."""
    status = submissions.get_status(session, principal=who, status_id=status_id)
    return TaxiiResponse(submissions.status_resource(status))


@router.get(ROOT + "/collections/", response_model=schemas.Collections)
def get_collections(session: SessionDep, who: PartnerKey, policy: PolicyDep) -> Response:
    """The collections this caller may read (TAXII 2.1 §5.1): audience views (service doc)."""
    found = service.collections_for(session, principal=who, policy=policy)
    return TaxiiResponse({"collections": [service.collection_resource(who, c) for c in found]})


@router.get(ROOT + "/collections/{collection_id}/", response_model=schemas.CollectionResource)
def get_collection(
    collection_id: str, session: SessionDep, who: PartnerKey, policy: PolicyDep
) -> Response:
    """One collection (TAXII 2.1 §5.2), by id or alias."""
    found = service.find_collection(session, principal=who, policy=policy, ident=collection_id)
    return TaxiiResponse(service.collection_resource(who, found))


def _page(
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    settings: SettingsDep,
    *,
    collection_id: str,
    endpoint: str,
    filters: Filters,
    limit: int | None,
    next: str | None,
    stix_id: str | None = None,
    with_definitions: bool = False,
) -> service.Page:
    collection = service.find_collection(
        session, principal=who, policy=policy, ident=collection_id, check_sector=False
    )
    return service.page(
        session,
        principal=who,
        policy=policy,
        secret=settings.secret,
        collection=collection,
        endpoint=endpoint,
        filters=filters,
        limit=page_size(limit),
        next_token=next,
        stix_id=stix_id,
        with_definitions=with_definitions,
    )


@router.get(ROOT + "/collections/{collection_id}/manifest/", response_model=schemas.Manifest)
@read_page
def get_manifest(
    request: Request,
    collection_id: str,
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    settings: SettingsDep,
    added_after: AddedAfter = None,
    match_id: MatchId = None,
    match_type: MatchType = None,
    match_version: MatchVersion = None,
    match_spec_version: MatchSpec = None,
    limit: Limit = None,
    next: Next = None,
) -> Response:
    """Object manifests (TAXII 2.1 §5.3): id, date_added, version, media type; one release."""
    filters = parse_filters(
        added_after=added_after,
        ids=match_id,
        types=match_type,
        version=match_version,
        spec_version=match_spec_version,
    )
    result = _page(
        session,
        who,
        policy,
        settings,
        collection_id=collection_id,
        endpoint="manifest",
        filters=filters,
        limit=limit,
        next=next,
    )
    return TaxiiResponse(service.manifest(result), headers=result.headers)


@router.get(ROOT + "/collections/{collection_id}/objects/", response_model=schemas.Envelope)
@read_page
def get_objects(
    request: Request,
    collection_id: str,
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    settings: SettingsDep,
    added_after: AddedAfter = None,
    match_id: MatchId = None,
    match_type: MatchType = None,
    match_version: MatchVersion = None,
    match_spec_version: MatchSpec = None,
    limit: Limit = None,
    next: Next = None,
) -> Response:
    """Objects (TAXII 2.1 §5.4): an envelope in date_added order, with the TLP 2.0 marking
    definitions it uses; the page is one release with one audit entry."""
    filters = parse_filters(
        added_after=added_after,
        ids=match_id,
        types=match_type,
        version=match_version,
        spec_version=match_spec_version,
    )
    result = _page(
        session,
        who,
        policy,
        settings,
        collection_id=collection_id,
        endpoint="objects",
        filters=filters,
        limit=limit,
        next=next,
        with_definitions=True,
    )
    return TaxiiResponse(service.envelope(result), headers=result.headers)


@router.post(
    ROOT + "/collections/{collection_id}/objects/",
    status_code=202,
    response_model=schemas.Status,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {TAXII_MEDIA: {"schema": schemas.ENVELOPE_IN}},
        }
    },
)
def add_objects(
    request: Request,
    collection_id: str,
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
) -> Response:
    """Add Objects (TAXII 2.1 §5.5): the envelope is ingested as a STIX bundle (channel
    ``taxii``), synchronously; 202 with the status resource, failures per object."""
    collection = service.find_collection(session, principal=who, policy=policy, ident=collection_id)
    status = submissions.add_objects(
        session,
        principal=who,
        policy=policy,
        collection=collection,
        body=body_of(request),
    )
    return TaxiiResponse(submissions.status_resource(status), status_code=202)


@router.get(
    ROOT + "/collections/{collection_id}/objects/{object_id}/", response_model=schemas.Envelope
)
def get_object(
    request: Request,
    collection_id: str,
    object_id: str,
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    settings: SettingsDep,
    added_after: AddedAfter = None,
    match_version: MatchVersion = None,
    match_spec_version: MatchSpec = None,
    limit: Limit = None,
    next: Next = None,
) -> Response:
    """One object (TAXII 2.1 §5.6): an envelope of its versions; 404 if the caller may see
    none (the refusal's audit entry is kept: ``recorded``)."""
    filters = parse_filters(
        added_after=added_after, version=match_version, spec_version=match_spec_version
    )
    result = _page(
        session,
        who,
        policy,
        settings,
        collection_id=collection_id,
        endpoint="object",
        filters=filters,
        limit=limit,
        next=next,
        stix_id=object_id,
        with_definitions=True,
    )
    if result.empty and not next:
        raise recorded(NotFound(f"no object {object_id} in this collection"))
    return TaxiiResponse(service.envelope(result), headers=result.headers)


@router.get(
    ROOT + "/collections/{collection_id}/objects/{object_id}/versions/",
    response_model=schemas.Versions,
)
def get_object_versions(
    request: Request,
    collection_id: str,
    object_id: str,
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    settings: SettingsDep,
    added_after: AddedAfter = None,
    match_spec_version: MatchSpec = None,
    limit: Limit = None,
    next: Next = None,
) -> Response:
    """Versions of one object (TAXII 2.1 §5.8), oldest first; 404 if the caller may see none."""
    filters = parse_filters(
        added_after=added_after, spec_version=match_spec_version, default_version="all"
    )
    result = _page(
        session,
        who,
        policy,
        settings,
        collection_id=collection_id,
        endpoint="versions",
        filters=filters,
        limit=limit,
        next=next,
        stix_id=object_id,
    )
    if result.empty and not next:
        raise recorded(NotFound(f"no object {object_id} in this collection"))
    return TaxiiResponse(service.versions(result), headers=result.headers)

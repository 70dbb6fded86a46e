"""The route class every hub endpoint uses: checks in order, then one unit of work.

Order (DESIGN.md §2): no or invalid key → 401 (429 after too many failures); wrong role →
403; media type → 406/415; parameters the database cannot hold → 422; body size → 413 and
JSON the hub will not parse (too deep, NUL characters) → 422; only then does FastAPI parse
and validate the body (422) and the endpoint look things up (404). FastAPI parses the body
*before* it runs dependencies, so authentication cannot be a plain dependency; it happens
here, before the handler.

Nothing waits for a client while holding a lock, a transaction or a pooled connection
(DESIGN §4 rule 10): the key is checked in a short read of its own, the body is read
(and size-checked) with no connection held, and only then does the request's unit of work
begin, lazily, at its first statement. Database work never runs on the event loop:
authentication, the endpoints (sync ``def``, run in the thread pool) and the commit run in
threads. The commit still comes after the endpoint returned and before the response is
sent, so a client never sees 2xx for work that was rolled back. An error raised by an
endpoint rolls its unit of work back, unless it was marked refused and recorded
(``hub.errors.recorded``): then the refusal's audit entry is committed before the error is
rendered, so raising a refusal is always safe.

The package: ``route`` (``HubRoute`` and the unit of work), ``inputs`` (values the database
cannot hold, media types), ``dependencies`` (what an endpoint declares and asks for). Endpoints
import these names from ``hub.routing``.
"""

from hub.routing.dependencies import (
    AnyKey,
    Operator,
    OperatorOrAuditor,
    PageCursor,
    PageLimit,
    PartnerKey,
    PolicyDep,
    RoleGuard,
    SessionDep,
    SettingsDep,
    Submitter,
    body_of,
    end_unit_of_work,
    get_app_settings,
    get_policy,
    get_session,
    limit_public,
    public,
    public_base_url,
    read_page,
    real_traffic_only,
    runtime_of,
)
from hub.routing.inputs import (
    MAX_JSON_DEPTH,
    accepts_json,
    check_json_body,
    check_parameters,
    json_media,
    nesting_exceeds,
)
from hub.routing.route import ERROR_DESCRIPTIONS, HubRoute, session_binds

__all__ = [
    "ERROR_DESCRIPTIONS",
    "MAX_JSON_DEPTH",
    "AnyKey",
    "HubRoute",
    "Operator",
    "OperatorOrAuditor",
    "PageCursor",
    "PageLimit",
    "PartnerKey",
    "PolicyDep",
    "RoleGuard",
    "SessionDep",
    "SettingsDep",
    "Submitter",
    "accepts_json",
    "body_of",
    "check_json_body",
    "check_parameters",
    "end_unit_of_work",
    "get_app_settings",
    "get_policy",
    "get_session",
    "limit_public",
    "json_media",
    "nesting_exceeds",
    "public",
    "public_base_url",
    "read_page",
    "real_traffic_only",
    "runtime_of",
    "session_binds",
]

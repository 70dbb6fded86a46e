"""A MISP remote through PyMISP, making the calls a MISP server makes on sync.

PyMISP's own constructor makes four requests on a session of its own; the connector builds
the client on the injected session instead and makes only the calls sync needs, in MISP's
order (getVersion, index, view; HEAD, add/edit).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pymisp import PyMISP
from pymisp.exceptions import PyMISPError

from connectors.base import IndexEntry, PushResult, RemoteInfo
from connectors.errors import (
    AuthenticationFailed,
    ConnectorError,
    MappingError,
    RemoteRejected,
)
from connectors.http import HttpSession, classify, session_for, transport_error

NOT_NEWER = "not newer than the local copy"
# The view a pulling MISP asks for (Server.php:553-566; seen in MISP/MISP#10753).
VIEW_PARAMS = (
    "deleted[]:0/deleted[]:1/excludeGalaxy:1/includeEventCorrelations:0/"
    "includeFeedCorrelations:0/includeWarninglistHits:0/excludeLocalTags:1"
)
T = TypeVar("T")


class MispRules(BaseModel):
    """Pull rules, as MISP's server settings name them (misp-sync.md §2.2)."""

    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(default_factory=list, description="tag names; '!' negates")
    orgs: list[str] = Field(default_factory=list, description="org uuids or names; '!' negates")
    published: bool = True
    since: int | str | None = Field(
        default=None, description="first pull only: epoch seconds or MISP's '30d' form"
    )

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"minimal": 1, "published": 1 if self.published else 0}
        if self.tags:
            out["tag"] = list(self.tags)
        if self.orgs:
            out["org"] = list(self.orgs)
        return out


class MispConfig(BaseModel):
    """What a MISP connection needs: where, which key, how long to wait."""

    model_config = ConfigDict(extra="forbid")

    url: str
    api_key: SecretStr
    verify_tls: bool = True
    timeout: float = Field(default=60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("the MISP URL must start with http:// or https://")
        return value.rstrip("/") + "/"  # PyMISP joins paths with urljoin


class _PyMISP(PyMISP):
    """PyMISP on our session, without the constructor's network calls."""

    def __init__(self, url: str, key: str, session: HttpSession, *, timeout: float) -> None:
        self.root_url = url
        self.key = key
        self.ssl = session.verify
        self.proxies = None
        self.cert = None
        self.auth = None
        self.timeout = timeout
        self.global_pythonify = False
        self.resources_path = Path(__import__("pymisp").__file__).parent / "data"
        session.headers["Authorization"] = key
        session.headers["User-Agent"] = "CWN hub (PyMISP)"
        self._PyMISP__session = session  # the name PyMISP's own methods use


class MispConnector:
    """Pull from and push to one MISP instance (``EventPuller`` and ``EventPusher``)."""

    config_model = MispConfig

    def __init__(self, config: MispConfig, *, http: requests.Session | None = None) -> None:
        self.config = config
        self.http = session_for(http, timeout=config.timeout, verify=config.verify_tls)
        self.misp = _PyMISP(
            config.url, config.api_key.get_secret_value(), self.http, timeout=config.timeout
        )

    # -- the one place foreign errors are translated ----------------------------------------

    def _call(self, what: str, call: Callable[[], T], *, ok: tuple[int, ...] = ()) -> T:
        try:
            result = call()
        except requests.RequestException as err:
            raise transport_error(err, what=what) from err
        except PyMISPError as err:
            response = self.http.last_response
            problem = classify(response, what=what) if response is not None else None
            raise problem or MappingError(f"{what}: {err}") from err
        response = self.http.last_response
        if response is not None and response.status_code not in ok:
            problem = classify(response, what=what)
            if problem is not None:
                raise problem
        return result

    def _json(self, what: str, call: Callable[[], Any]) -> Any:
        result = self._call(what, call)
        if isinstance(result, str):
            raise MappingError(f"{what}: the remote did not answer JSON ({result[:200]!r})")
        return result

    # -- check ------------------------------------------------------------------------------

    def check(self) -> RemoteInfo:
        """getVersion and users/view/me, as MISP's "test connection" does."""
        version = self._json("getVersion", lambda: self.misp.direct_call("servers/getVersion"))
        if not isinstance(version, dict) or "version" not in version:
            raise MappingError("getVersion: the answer has no version; is this a MISP?")
        me = self._json("users/view/me", lambda: self.misp.direct_call("users/view/me"))
        user = me.get("User", {}) if isinstance(me, dict) else {}
        role = me.get("Role", {}) if isinstance(me, dict) else {}
        org = me.get("Organisation", {}) if isinstance(me, dict) else {}
        notes = []
        if not version.get("perm_sync"):
            notes.append("the key's role lacks sync permission: pushes will be refused")
        return RemoteInfo(
            system="MISP",
            version=str(version["version"]),
            user=user.get("email"),
            organisation=(f"{org.get('name')} ({org.get('uuid')})" if org.get("uuid") else None),
            permissions={
                "sync": bool(version.get("perm_sync")),
                "sighting": bool(version.get("perm_sighting")),
                "role " + str(role.get("name") or "?"): True,
            },
            notes=tuple(notes),
        )

    # -- pull -------------------------------------------------------------------------------

    def index(self, *, rules: dict[str, Any], since: int | None) -> list[IndexEntry]:
        """``POST /events/index`` with the pull rules (``since``: timestamp at least)."""
        body = MispRules.model_validate(rules).body()
        if since is not None:
            body["timestamp"] = int(since)
        elif MispRules.model_validate(rules).since is not None:
            body["timestamp"] = MispRules.model_validate(rules).since
        rows = self._json("events/index", lambda: self.misp.direct_call("events/index", body))
        if isinstance(rows, dict):  # legacy: a single object (Server.php:956-959)
            rows = [rows]
        if not isinstance(rows, list):
            raise MappingError("events/index: the answer is not a list")
        out = []
        for row in rows:
            try:
                out.append(
                    IndexEntry(
                        uuid=str(row["uuid"]).lower(),
                        timestamp=int(row["timestamp"]),
                        published=str(row.get("published")).lower() in ("1", "true"),
                        orgc_uuid=row.get("orgc_uuid") or (row.get("Orgc") or {}).get("uuid"),
                    )
                )
            except (KeyError, TypeError, ValueError) as err:
                raise MappingError(f"events/index: a row lacks uuid or timestamp ({err})") from err
        out.sort(key=lambda e: (e.timestamp, e.uuid))
        return out

    def fetch(self, uuid: str) -> dict[str, Any]:
        """``GET /events/view/{uuid}/deleted[]:0/deleted[]:1/…``: the inner event."""
        doc = self._json(
            f"events/view/{uuid}",
            lambda: self.misp.direct_call(f"events/view/{uuid}/{VIEW_PARAMS}"),
        )
        event = doc.get("Event", doc) if isinstance(doc, dict) else None
        if not isinstance(event, dict) or str(event.get("uuid", "")).lower() != uuid:
            raise MappingError(f"events/view/{uuid}: the answer is not that event")
        return event

    # -- push -------------------------------------------------------------------------------

    def push(self, event: dict[str, Any]) -> PushResult:
        """HEAD, then add or edit (``metadata:1``), with MISP's 404 fallbacks (ServerSyncTool
        117-175); "not newer than the local copy" means the remote has it: a success."""
        body = {"Event": event}
        uuid = str(event["uuid"]).lower()
        exists = self._call(
            f"HEAD events/view/{uuid}",
            lambda: self.misp.event_exists(uuid),
            ok=(404,),
        )
        first, second = ("edit", "add") if exists else ("add", "edit")
        for how in (first, second):
            result = self._send(how, uuid, body)
            if result is not None:
                return result
        raise RemoteRejected(f"push {uuid}: the remote answered 404 to both add and edit")

    def _send(self, how: str, uuid: str, body: dict[str, Any]) -> PushResult | None:
        what = f"events/{how} {uuid}"
        if how == "add":
            call: Callable[[], Any] = lambda: self.misp.add_event(body, metadata=True)  # type: ignore[arg-type]  # noqa: E731
        else:
            call = lambda: self.misp.update_event(body, event_id=uuid, metadata=True)  # type: ignore[arg-type]  # noqa: E731
        try:
            answer = self._call(what, call)
        except AuthenticationFailed as err:
            response = self.http.last_response
            if err.status == 403 and response is not None and NOT_NEWER in response.text:
                return PushResult(uuid, "not-newer")
            if err.status == 403:  # a refused save, in MISP's words: this event only
                raise RemoteRejected(err.message, status=403) from err
            raise
        except MappingError as err:
            if err.status == 404:
                return None
            raise
        if isinstance(answer, dict) and "errors" in answer:
            raise RemoteRejected(f"{what}: {answer['errors']}")
        remote = answer.get("Event", answer) if isinstance(answer, dict) else {}
        return PushResult(uuid, "added" if how == "add" else "edited", str(remote.get("id")))


__all__ = ["ConnectorError", "MispConfig", "MispConnector", "MispRules"]

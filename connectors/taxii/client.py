"""One TAXII 2.1 collection through taxii2-client, on the injected session."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urljoin

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from taxii2client.common import _HTTPConnection
from taxii2client.exceptions import AccessError, TAXIIServiceException
from taxii2client.v21 import ApiRoot, Collection, Server

from connectors.base import ObjectPage, RemoteInfo
from connectors.errors import AuthenticationFailed, MappingError
from connectors.http import classify, session_for, transport_error

T = TypeVar("T")


class TaxiiConfig(BaseModel):
    """A TAXII server (discovery URL, ``…/taxii2/``), a collection (id or alias) and a key
    (sent as ``Authorization: Bearer``) or a user and password (HTTP Basic)."""

    model_config = ConfigDict(extra="forbid")

    url: str
    collection: str
    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    verify_tls: bool = True
    timeout: float = Field(default=60.0, gt=0)

    @field_validator("url")
    @classmethod
    def _slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("the TAXII URL must start with http:// or https://")
        return value.rstrip("/") + "/"


class _Bearer(requests.auth.AuthBase):
    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.key}"
        return r


class TaxiiConnector:
    """Pull objects from one TAXII 2.1 collection (``ObjectPuller``)."""

    config_model = TaxiiConfig

    def __init__(self, config: TaxiiConfig, *, http: requests.Session | None = None) -> None:
        self.config = config
        self.http = session_for(http, timeout=config.timeout, verify=config.verify_tls)
        if config.api_key is not None:
            self.http.auth = _Bearer(config.api_key.get_secret_value())
        elif config.username and config.password is not None:
            self.http.auth = (config.username, config.password.get_secret_value())
        self.conn = _HTTPConnection(version="2.1", verify=config.verify_tls)
        self.conn.session.close()
        self.conn.session = self.http
        self._collection: Collection | None = None

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except requests.HTTPError as err:
            problem = classify(err.response, what=what) if err.response is not None else None
            raise (problem or MappingError(f"{what}: {err}")) from err
        except requests.RequestException as err:
            raise transport_error(err, what=what) from err
        except AccessError as err:
            raise AuthenticationFailed(f"{what}: {err}") from err
        except (TAXIIServiceException, ValueError, KeyError) as err:
            raise MappingError(f"{what}: {err}") from err

    def _find(self) -> tuple[Server, Collection]:
        server = Server(self.config.url, conn=self.conn)
        wanted = self.config.collection

        def look() -> Collection:
            # Server builds its API roots on connections of their own (without our session),
            # so the roots are made here, on ours.
            for url in server._raw.get("api_roots") or []:  # noqa: SLF001 - taxii2-client keeps the discovery document only there
                root = ApiRoot(urljoin(self.config.url, url), conn=self.conn)
                for c in root.collections:
                    if wanted in (c.id, c.alias, c.title):
                        return c
            raise MappingError(f"no readable collection {wanted!r} at {self.config.url}")

        return server, self._call("collections", look)

    def collection(self) -> Collection:
        if self._collection is None:
            self._collection = self._find()[1]
        return self._collection

    def check(self) -> RemoteInfo:
        server, found = self._find()
        self._collection = found
        title = self._call("discovery", lambda: server.title)
        return RemoteInfo(
            system="TAXII",
            version="2.1",
            organisation=title,
            permissions={"read": bool(found.can_read), "write": bool(found.can_write)},
            notes=(f"collection {found.title!r} ({found.id})",),
        )

    def page(
        self, *, added_after: str | None, next: str | None, types: list[str], limit: int
    ) -> ObjectPage:
        """``GET …/objects/`` with ``limit``, ``added_after`` or ``next``, ``match[type]``.

        Every request, ``next`` ones included, carries ``limit`` and the same filters: the
        spec allows either, but medallion (the OASIS reference server) refuses a ``next``
        whose filters changed (400) and fails one without ``limit`` (500).
        """
        collection = self.collection()
        kwargs: dict[str, Any] = {"limit": limit}
        if next:
            kwargs["next"] = next
        if added_after:
            kwargs["added_after"] = added_after
        if types:
            kwargs["type"] = list(types)
        envelope = self._call("objects", lambda: collection.get_objects(**kwargs))
        if not isinstance(envelope, dict):
            raise MappingError("objects: the answer is not a TAXII envelope")
        response = self.http.last_response
        last = response.headers.get("X-TAXII-Date-Added-Last") if response is not None else None
        objects = envelope.get("objects") or []
        return ObjectPage(
            objects=list(objects),
            more=bool(envelope.get("more")),
            next=envelope.get("next"),
            date_added_last=last,
        )

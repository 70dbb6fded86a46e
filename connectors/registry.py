"""Every connector kind, listed (no discovery), and ``build`` to make one for a connection."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

import requests
from pydantic import ValidationError

from connectors.errors import MappingError
from connectors.misp.client import MispConnector
from connectors.taxii.client import TaxiiConnector


class ConnectorKind(StrEnum):
    MISP_PULL = "misp-pull"
    MISP_PUSH = "misp-push"
    TAXII_PULL = "taxii-pull"


CONNECTORS: Final[Mapping[ConnectorKind, type[MispConnector] | type[TaxiiConnector]]] = {
    ConnectorKind.MISP_PULL: MispConnector,
    ConnectorKind.MISP_PUSH: MispConnector,
    ConnectorKind.TAXII_PULL: TaxiiConnector,
}


def build(
    kind: ConnectorKind | str, config: Mapping[str, Any], *, http: requests.Session | None = None
) -> Any:
    """A connector for one connection; ``http`` replaces the HTTP session (tests, proxies)."""
    cls = CONNECTORS[ConnectorKind(kind)]
    try:
        validated = cls.config_model.model_validate(dict(config))
    except ValidationError as err:
        first = err.errors()[0]
        raise MappingError(
            f"connection settings: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from err
    return cls(validated, http=http)  # type: ignore[arg-type]

"""Talking to the outside: MISP (PyMISP) and TAXII 2.1 (taxii2-client). No database here.

``build(kind, config, http=…)`` makes a connector for one connection; its capabilities are
the Protocols in ``connectors.base``; its failures are the tree in ``connectors.errors``.
"""

from connectors.base import (
    Checker,
    EventPuller,
    EventPusher,
    IndexEntry,
    ObjectPage,
    ObjectPuller,
    PushResult,
    RemoteInfo,
)
from connectors.errors import (
    AuthenticationFailed,
    ConnectorError,
    MappingError,
    PermanentError,
    RemoteRejected,
    RetriableError,
    SourceUnavailable,
)
from connectors.http import HttpSession
from connectors.registry import CONNECTORS, ConnectorKind, build

__all__ = [
    "CONNECTORS",
    "AuthenticationFailed",
    "Checker",
    "ConnectorError",
    "ConnectorKind",
    "EventPuller",
    "EventPusher",
    "HttpSession",
    "IndexEntry",
    "MappingError",
    "ObjectPage",
    "ObjectPuller",
    "PermanentError",
    "PushResult",
    "RemoteInfo",
    "RemoteRejected",
    "RetriableError",
    "SourceUnavailable",
    "build",
]

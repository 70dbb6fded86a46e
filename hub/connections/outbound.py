"""Where connections may point: never at the hub's own machine, link-local or cloud-metadata
addresses; private ranges only when ``HUB_CONNECTIONS_ALLOW_PRIVATE`` is set.

A connection URL names a host an operator typed; without this a hub could be made to ask
its own metadata service or loopback-only admin ports on someone's behalf (and show the
answer in a connection test). Names are resolved and every address is checked, when the
URL is stored and again when the hub connects: the HTTP session made here checks the
address it actually connected to, so a name that resolves elsewhere later (DNS rebinding)
is refused too.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from hub.errors import InvalidField
from hub.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services outside the link-local range (which is refused as a whole).
_METADATA = (
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS over IPv6
)


class OutboundRefused(InvalidField):
    """A connection URL whose host the hub may not connect to."""


@dataclass(frozen=True, slots=True)
class OutboundRules:
    allow_private: bool = False
    allow_loopback: bool = False  # development and tests only (refused in production)

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundRules:
        return cls(
            allow_private=settings.connections_allow_private,
            allow_loopback=settings.connections_allow_loopback,
        )

    def refusal(self, address: Address) -> str | None:
        """Why the hub may not connect to ``address``, or None if it may."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in net for net in _METADATA):
            return "a cloud metadata address"
        if address.is_loopback:
            return None if self.allow_loopback else "a loopback address (the hub itself)"
        if address.is_link_local:
            return "a link-local address (cloud metadata lives there)"
        if address.is_unspecified or address.is_multicast or address.is_reserved:
            return "not an address a server has"
        if address.is_private or address in _SHARED:
            if self.allow_private:
                return None
            return "a private address (set HUB_CONNECTIONS_ALLOW_PRIVATE to allow)"
        return None


STRICT = OutboundRules()
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not public either


_LOOPBACK_NAMES = ("localhost", ".localhost")  # RFC 6761: always loopback
_NOWHERE = (".example", ".invalid")  # RFC 2606: never resolve; no lookup leaves the hub


def _addresses(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]").split("%", 1)[0])]
    except ValueError:
        pass
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(_LOOPBACK_NAMES[1]):
        return [ipaddress.ip_address("127.0.0.1")]
    if name.endswith(_NOWHERE):
        return []
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        # Points nowhere yet (DNS not set up, or down): nothing to refuse now; the check at
        # connect time decides once it resolves.
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def check_url(url: str, rules: OutboundRules) -> None:
    """OutboundRefused (422 on ``url``) unless every address ``url``'s host resolves to is
    one the hub may connect to (a name that does not resolve passes: it is checked again at
    connect time). Resolves names: call it with no transaction open."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused("url: must be an absolute http(s) URL", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused(
            "url: the port is not a number from 1 to 65535", field="url"
        ) from None
    for address in _addresses(parts.hostname, port):
        why = rules.refusal(address)
        if why is not None:
            raise OutboundRefused(
                f"url: {parts.hostname} is {address}, {why}; the hub does not connect there",
                field="url",
            )


# --- the check again at connect time --------------------------------------------------------


def _checked(connection: Any, rules: OutboundRules) -> None:
    sock = connection.sock
    peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0])
    why = rules.refusal(peer)
    if why is not None:
        connection.close()
        raise requests.exceptions.InvalidURL(f"refused to talk to {peer}: {why}")


def checked_pools(rules: OutboundRules) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections check their peer address once connected."""

    class CheckedHTTP(HTTPConnection):
        def connect(self) -> None:
            super().connect()
            _checked(self, rules)

    class CheckedHTTPS(HTTPSConnection):
        def connect(self) -> None:
            super().connect()
            _checked(self, rules)

    class HTTPPool(HTTPConnectionPool):
        ConnectionCls = CheckedHTTP

    class HTTPSPool(HTTPSConnectionPool):
        ConnectionCls = CheckedHTTPS

    return {"http": HTTPPool, "https": HTTPSPool}


class CheckedAdapter(HTTPAdapter):
    """Checks the URL before each request and the connected address after each connect."""

    def __init__(self, rules: OutboundRules) -> None:
        self.rules = rules
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = checked_pools(self.rules)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        try:
            check_url(request.url or "", self.rules)
        except OutboundRefused as err:  # permanent: the connection needs another URL
            raise requests.exceptions.InvalidURL(err.detail, request=request) from None
        return super().send(request, *args, **kwargs)


def checked_session(rules: OutboundRules) -> requests.Session:
    """A requests session that only reaches addresses ``rules`` allow."""
    session = requests.Session()
    adapter = CheckedAdapter(rules)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

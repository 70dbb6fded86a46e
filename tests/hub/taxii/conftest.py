"""TAXII tests: the app served by uvicorn on a loopback port, for the real taxii2-client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import uvicorn
from taxii2client.v21 import Server

TAXII = "application/taxii+json;version=2.1"
RANK = {"clear": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}
CEILING = {"core": 4, "ecosystem": 2, "connection": 1}


class KeyAuth(requests.auth.AuthBase):
    """The hub's key header (`Authorization: <key>`), for taxii2-client and requests."""

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self.key
        return r


@pytest.fixture
def server_url(app: Any) -> Iterator[str]:
    """The app on 127.0.0.1:<free port> in a background thread; stopped at teardown."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def taxii_server(url: str, key: str) -> Server:
    return Server(f"{url}/taxii2/", auth=KeyAuth(key))


def collection(url: str, key: str, alias: str) -> Any:
    root = taxii_server(url, key).api_roots[0]
    found = [c for c in root.collections if c.alias == alias]
    assert found, (alias, [c.alias for c in root.collections])
    return found[0]


def taxii_oracle(
    who_uuid: str,
    tier: str,
    tlp_accepted: bool,
    *,
    label: str,
    distribution: int,
    members: set[str],
    source: str,
) -> bool:
    """May this partner receive an element with this label and addressing over TAXII?

    Written from DESIGN.md §3, independently of `tlp/`: RED never goes over TAXII (not even
    back to its source); the source gets the rest of its own items back; otherwise the tier
    ceiling, the TLP agreement, and the addressing (AMBER+STRICT only to named partners).
    """
    rank = RANK[label]
    if rank == RANK["red"]:
        return False
    if who_uuid == source:
        return True
    if rank > CEILING[tier] or (not tlp_accepted and rank > 0):
        return False
    if distribution == 0:
        return False
    if distribution in (1, 2, 3):
        return rank <= RANK["amber"]
    return who_uuid in members

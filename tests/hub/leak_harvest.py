"""The differential leak test's harness: build a world (tests/hub/leak_oracle.py) in a running hub
through its public interfaces, harvest every channel each partner has, and compare what came
out with the oracle, in both directions (nothing outside the release appears: safety; all of it
arrives: liveness).

Only the setup uses the services (the hub's own organisation, the operator key) and the worker
loop (``hub worker --once``); everything a partner sees is fetched over HTTP as a partner's
client would.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import uuid as uuid_mod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.auth import service as keys
from hub.db import session_scope
from hub.partners import service as partners
from hub.runtime import Runtime
from hub.vocabulary import Role
from hub.worker import run_due
from tests.conftest import TEST_SECRET, _empty_all_tables
from tests.hub.leak_oracle import (
    AMBER,
    LABELS,
    LENIENT,
    STRICT,
    Attr,
    Channel,
    Event,
    LiveSighting,
    Party,
    Reading,
    Release,
    Universe,
    World,
    allowed,
    describe,
    event_sectors,
    find_tokens,
    held_distribution,
    label_tag,
    notification_observations,
    payload,
    pushed_distribution,
    tlp_rank_of,
    universe,
    view,
)

TAXII_MEDIA = "application/taxii+json;version=2.1"
#: STIX 2.1 TLP marking definitions (TLP 2.0 and 1.0 ids) → rank
MARKINGS = {
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": 0,
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": 0,
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": 1,
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": 1,
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": 2,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": 2,
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": 3,
    "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37": 3,
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": 4,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": 4,
}
#: Attribute types misp-stix renders with their value in the STIX output (liveness there).
STIX_VALUE_TYPES = {"ip-dst", "ip-src", "domain", "hostname", "url", "sha256", "email-src"}


# --- findings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    channel: str
    check: str  # what kind of failure: the grouping key with the channel
    partner: str
    request: str
    detail: str

    @property
    def kind(self) -> tuple[str, str]:
        return (self.channel, self.check)


@dataclass
class Example:
    """The smallest world that showed a kind of failure, with the findings of that kind."""

    size: int
    world: str
    findings: list[Finding]


class Collector:
    """Findings across hypothesis examples and scenarios, one entry per distinct kind, keeping
    the smallest world that showed it."""

    def __init__(self) -> None:
        self.kinds: dict[tuple[str, str], Example] = {}
        self.examples = 0

    def add(self, world: World, findings: list[Finding], *, label: str = "") -> None:
        self.examples += 1
        by_kind: dict[tuple[str, str], list[Finding]] = {}
        for f in findings:
            by_kind.setdefault(f.kind, []).append(f)
        size = world.size()
        for kind, found in by_kind.items():
            known = self.kinds.get(kind)
            if known is None or size < known.size:
                text = (label + "\n" if label else "") + render_world(world)
                self.kinds[kind] = Example(size, text, found)

    def report(self) -> str:
        lines = [f"{len(self.kinds)} distinct failure kind(s) over {self.examples} world(s):"]
        for (channel, check), ex in sorted(self.kinds.items()):
            lines.append(f"\n## [{channel}] {check}  ({len(ex.findings)} in the smallest world)")
            for f in ex.findings[:3]:
                lines.append(f"   partner {f.partner}: {f.request}\n      {f.detail}")
            lines.append("   world:\n" + "\n".join("      " + x for x in ex.world.splitlines()))
        return "\n".join(lines)


def render_world(world: World) -> str:
    """A compact description of a world, enough to rebuild it by hand."""
    out = []
    for p in world.partners:
        extra = []
        if p.sectors:
            extra.append("sectors=" + ",".join(p.sectors))
        if p.targets:
            extra.append(f"targets={list(p.targets.prefixes + p.targets.domains)}")
        if p.constituency:
            c = p.constituency
            extra.append(f"constituency={list(c.prefixes + c.domains + c.sectors)}")
        if p.push:
            extra.append("push")
        out.append(
            f"{p.key} {p.name!r} {p.uuid[:8]} tier={p.tier} tlp={'yes' if p.tlp else 'no'} "
            f"{p.status} {' '.join(extra)}"
        )

    def addr(x: Any) -> str:
        d = "-" if x.distribution is None else str(x.distribution)
        if x.group is not None:
            d += f" sg{{{','.join(x.group.members)}{'+outsider' if x.group.outsiders else ''}}}"
        return f"dist={d}"

    def tags(ts: Any) -> str:
        return "[" + ", ".join(t.name + (" (local)" if t.local else "") for t in ts) + "]"

    for e in world.events:
        flags = [] if e.published else ["unpublished"]
        if e.proposals:
            flags.append(f"{len(e.proposals)} proposal(s)")
        if e.creator_email:
            flags.append("creator_email")
        if e.claimed_orgc:
            flags.append("claims another Orgc")
        if e.input_ids:
            flags.append("numeric ids")
        out.append(
            f"event {e.uuid[:8]} {e.info!r} by {e.source} {addr(e)} tags={tags(e.tags)} "
            + " ".join(flags)
        )
        for a in e.attributes:
            out.append(
                f"   attr {a.uuid[:8]} {a.type}={a.value} {addr(a)} tags={tags(a.tags)}"
                + _attr_extras(a)
            )
        for o in e.objects:
            out.append(f"   object {o.uuid[:8]} {o.name} {addr(o)} tags={tags(o.tags)}")
            for a in o.attributes:
                out.append(
                    f"      attr {a.uuid[:8]} {a.type}={a.value} {addr(a)} tags={tags(a.tags)}"
                    + _attr_extras(a)
                )
        for r in e.reports:
            out.append(f"   report {r.uuid[:8]} {r.name!r} {addr(r)}")
    for s in world.sightings:
        out.append(
            f"sighting by {s.by} on {s.attribute[:8]} source={s.source} "
            f"{'accepted' if s.accepted else 'refused'}"
        )
    return "\n".join(out)


def _attr_extras(a: Any) -> str:
    out = ""
    for s in a.sightings:
        out += f" sighting(source={s.source}, claims {s.claimed or s.org_name})"
    if a.proposals:
        out += f" {len(a.proposals)} proposal(s)"
    return out


# --- a partner's MISP that records what the hub pushes --------------------------------------


class FakeMisp:
    """Answers the calls a MISP push makes (getVersion, HEAD, add, edit) and records every
    request, per URL prefix (one prefix per partner: ``/<partner key>/``)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, bytes]] = []  # (prefix, method, path, body)
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                prefix, _, rest = self.path.lstrip("/").partition("/")
                with outer.lock:
                    outer.requests.append((prefix, method, "/" + rest, body))
                status, answer = outer.respond(method, "/" + rest, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            def do_HEAD(self) -> None:
                self._answer("HEAD")

            def do_PUT(self) -> None:
                self._answer("PUT")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def respond(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        if path.startswith("/servers/getVersion"):
            return 200, {"version": "2.5.1", "perm_sync": True, "perm_sighting": True}
        if path.startswith("/users/view/me"):
            return 200, {
                "User": {"id": "1", "email": "sync@partner.example"},
                "Role": {"name": "Sync user", "perm_sync": True},
                "Organisation": {"name": "partner", "uuid": str(uuid_mod.uuid4())},
            }
        if method == "HEAD":
            return 404, {}
        if path.startswith(("/events/add", "/events/edit")):
            try:
                doc = json.loads(body or b"{}")
            except ValueError:
                return 400, {"errors": "not JSON"}
            inner = doc.get("Event", doc) if isinstance(doc, dict) else {}
            return 200, {"Event": {"id": "1", "uuid": inner.get("uuid", "")}}
        if path.startswith("/events/index"):
            return 200, []
        return 404, {"name": "Not Found", "message": "Not Found", "url": path}

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()

    def of(self, prefix: str) -> list[tuple[str, str, bytes]]:
        with self.lock:
            return [(m, p, b) for pre, m, p, b in self.requests if pre == prefix]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the hub under test -----------------------------------------------------------------------


@dataclass
class Hub:
    client: Any  # fastapi.testclient.TestClient
    maker: sessionmaker[Session]
    engine: Engine
    context: Runtime
    fake: FakeMisp
    operator: str = ""
    hub_uuid: str = ""
    keys: dict[str, str] = field(default_factory=dict)  # partner key → API key
    fresh: bool = True  # the database is empty (the fixture empties it after each test)

    @property
    def op(self) -> dict[str, str]:
        return {"Authorization": self.operator}

    def reset(self) -> None:
        """An empty database with the hub's own organisation and an operator key."""
        if not self.fresh:
            _empty_all_tables(self.engine)
        self.fresh = False
        self.fake.reset()
        self.keys = {}
        with session_scope(self.maker) as session:
            org, _ = partners.ensure_hub_org(session, name="NCSC-NL", actor="leak-test")
            self.hub_uuid = org.uuid
            self.operator = keys.create_key(
                session, partner=org, role=Role.OPERATOR, secret=TEST_SECRET, actor="leak-test"
            ).key

    def worker(self) -> None:
        """``hub worker --once``: every job until nothing is due."""
        run_due(self.maker, self.context)


def _ok(r: Any, *codes: int) -> Any:
    assert r.status_code in (codes or (200,)), (r.request.method, str(r.request.url), r.text)
    return r.json() if r.content else None


def build(hub: Hub, world: World) -> None:
    """Partners, keys, targets, push connections, the events (submitted by their sources),
    sightings, then the worker's round (notifications, pushes, STIX)."""
    hub.reset()
    if "hub" in world.parties:  # operator submissions are the hub's own organisation's
        world.parties["hub"] = replace(world.parties["hub"], uuid=hub.hub_uuid)
    c = hub.client
    for p in world.partners:
        body: dict[str, Any] = {
            "uuid": p.uuid,
            "name": p.name,
            "type": "sectoral-csirt" if p.key in ("p0", "p1") else "isp",
            "tier": p.tier,
            "region": "nl",
            "sectors": list(p.sectors),
            "functions": ["information-sharing", "target-victim-notification"],
        }
        if p.tlp:
            body["tlp_accepted_at"] = "2026-01-01"
        if p.constituency is not None:
            body["constituency"] = {
                "ip_prefixes": list(p.constituency.prefixes),
                "domains": list(p.constituency.domains),
                "sectors": list(p.constituency.sectors),
            }
        _ok(c.post("/api/v1/admin/partners", json=body, headers=hub.op), 201)
        steps = {
            "prospect": [],
            "active": ["onboarding", "active"],
            "suspended": ["onboarding", "active"],
        }[p.status]
        for step in steps:
            _ok(
                c.post(
                    f"/api/v1/admin/partners/{p.uuid}/status",
                    json={"status": step, "reason": "leak test"},
                    headers=hub.op,
                )
            )
        issued = _ok(
            c.post(
                f"/api/v1/admin/partners/{p.uuid}/keys", json={"role": "partner"}, headers=hub.op
            ),
            201,
        )
        hub.keys[p.key] = issued["key"]
        if p.targets is not None:
            _ok(
                c.put(
                    f"/api/v1/admin/notifications/targets/{p.uuid}",
                    json={
                        "ip_prefixes": list(p.targets.prefixes),
                        "domains": list(p.targets.domains),
                        "sectors": list(p.targets.sectors),
                    },
                    headers=hub.op,
                )
            )
        if p.push:
            _ok(
                c.post(
                    "/api/v1/admin/connections",
                    json={
                        "name": f"push-{p.key}",
                        "kind": "misp-push",
                        "url": f"{hub.fake.url}/{p.key}/",
                        "partner": p.uuid,
                        "credentials": {"api_key": "k" * 40},
                        "interval_seconds": 60,
                    },
                    headers=hub.op,
                ),
                201,
            )
    for e in world.events:
        key = hub.operator if e.source == "hub" else hub.keys[e.source]
        if e.via_misp:  # as the source's MISP pushes it: HEAD, then add
            assert (
                c.head(f"/misp/events/view/{e.uuid}", headers={"Authorization": key}).status_code
                == 404
            )
            _ok(
                c.post(
                    "/misp/events/add/metadata:1",
                    json=payload(world, e),
                    headers={"Authorization": key},
                )
            )
        else:
            _ok(
                c.post("/api/v1/events", json=payload(world, e), headers={"Authorization": key}),
                201,
            )
    sightings = []
    for s in world.sightings:
        r = c.post(
            "/misp/sightings/add",
            json={"uuid": s.attribute, "source": s.source, "type": "0"},
            headers={"Authorization": hub.keys[s.by]},
        )
        sightings.append(
            LiveSighting(s.by, s.event, s.attribute, s.source, accepted=r.status_code == 200)
        )
    world.sightings = sightings
    for p in world.partners:
        if p.status == "suspended":
            _ok(
                c.post(
                    f"/api/v1/admin/partners/{p.uuid}/status",
                    json={"status": "suspended", "reason": "leak test"},
                    headers=hub.op,
                )
            )
    hub.worker()


# --- the harvest and the checks ---------------------------------------------------------------

STRICTLY = " [strict reading]"


@dataclass
class Seen:
    """What one partner receives over one channel, under the strict reading (what the hub must
    do) and under the lenient one (what no reading allows beyond)."""

    strict: dict[str, Release]
    loose: dict[str, Release]

    def only(self, keep: Callable[[Release, Reading], bool]) -> Seen:
        return Seen(
            {u: r for u, r in self.strict.items() if keep(r, STRICT)},
            {u: r for u, r in self.loose.items() if keep(r, LENIENT)},
        )

    def union(self, other: Seen) -> Seen:
        return Seen({**self.strict, **other.strict}, {**self.loose, **other.loose})


def _strip(text: str, *secrets: str) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "X").replace(s.upper(), "X")
    return text


def decoded_cursor(cursor: str) -> Any | None:
    """The cursor's content when a client can read it (base64 of JSON), else None."""
    for candidate in (cursor, cursor.split(".")[0]):
        try:
            raw = base64.urlsafe_b64decode(candidate + "=" * (-len(candidate) % 4))
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue
    return None


def _walk(node: Any) -> Iterator[tuple[str | None, Any]]:
    """Every (key, value) pair in a JSON document, depth first."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield None, v
            yield from _walk(v)


def _path_of(node: Any, secret: str, path: str = "") -> str | None:
    """Where in a JSON document ``secret`` occurs (case-insensitive), as a dotted path."""
    if isinstance(node, dict):
        for k, v in node.items():
            found = _path_of(v, secret, f"{path}.{k}")
            if found is not None:
                return found
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found = _path_of(v, secret, f"{path}[{i}]")
            if found is not None:
                return found
    elif isinstance(node, str) and secret in node.lower():
        return path or "."
    return None


def _tag_names(element: dict[str, Any]) -> list[str]:
    tags = element.get("Tag") or element.get("tags") or []
    return [t["name"] if isinstance(t, dict) else str(t) for t in tags]


def _live(items: Any) -> list[dict[str, Any]]:
    return [x for x in items or [] if isinstance(x, dict) and not x.get("deleted")]


def _attribute_uuids(
    seen: dict[str, Release], keep: Callable[[Attr], bool] = lambda a: True
) -> set[str]:
    return {a.uuid for r in seen.values() for a, _ in r.attributes.values() if keep(a)}


def _event_uuids(
    seen: dict[str, Release], keep: Callable[[Release], bool] = lambda r: True
) -> set[str]:
    return {u for u, r in seen.items() if keep(r)}


def _found_events(body: Any) -> list[Any]:
    """Event uuids in a ``/misp/events/restSearch`` answer."""
    return [x.get("Event", {}).get("uuid") for x in body.get("response") or []]


def _found_attributes(body: Any) -> list[Any]:
    """Attribute uuids in a ``/misp/attributes/restSearch`` answer."""
    return [a.get("uuid") for a in (body.get("response") or {}).get("Attribute") or []]


class Inspector:
    """Harvests every channel for every partner of one world and records what disagrees with
    the oracle."""

    def __init__(self, hub: Hub, world: World) -> None:
        self.hub = hub
        self.world = world
        self.u: Universe = universe(world)
        self.findings: list[Finding] = []
        self._views: dict[tuple[str, Channel], Seen] = {}
        # sighting source token → (organisation key that really made it, attribute uuid)
        self.sighting_by: dict[str, tuple[str, str]] = {}
        # Another organisation's sighting goes out anonymised, without its source text (the
        # hub's reading: the text may name who saw it), so sightings submitted with an event
        # are recognised by uuid; those added later (uuid unknown) by their source text, which
        # only their maker sees.
        self.sighting_uuid: dict[str, tuple[str, str]] = {}
        for e in world.events:
            for _, a in e.all_attributes():
                for s in a.sightings:
                    self.sighting_by[s.source] = (e.source, a.uuid)
                    self.sighting_uuid[s.uuid] = (e.source, a.uuid)
        for s in world.sightings:
            if s.accepted:
                self.sighting_by[s.source] = (s.by, s.attribute)
        self.ghost = str(uuid_mod.uuid4())  # a uuid nothing has
        self._forged: set[str] = set()

    # -- plumbing --------------------------------------------------------------------------

    def seen(self, party: Party, channel: Channel) -> Seen:
        found = self._views.get((party.key, channel))
        if found is None:
            found = self._views[(party.key, channel)] = Seen(
                view(self.world, party, channel, STRICT), view(self.world, party, channel, LENIENT)
            )
        return found

    def fail(self, channel: str, check: str, party: Party, request: str, detail: str) -> None:
        if check.startswith("leak:"):
            channel = channel.split(" ")[0]  # one kind per channel; the request names the filter
        if len(self.findings) < 3000:
            self.findings.append(Finding(channel, check, party.key, request, detail))

    def extra(
        self, channel: str, check: str, party: Party, request: str, detail: str, *, loose: bool
    ) -> None:
        """Something the strict reading does not release came out; ``loose``: the lenient
        reading would release it."""
        self.fail(channel, check + (STRICTLY if loose else ""), party, request, detail)

    def headers(self, party: Party, **extra: str) -> dict[str, str]:
        return {"Authorization": self.hub.keys[party.key], **extra}

    def get(self, party: Party, url: str, **extra: str) -> Any:
        return self.hub.client.get(url, headers=self.headers(party, **extra))

    def post(self, party: Party, url: str, body: Any) -> Any:
        return self.hub.client.post(url, json=body, headers=self.headers(party))

    @staticmethod
    def refused(r: Any) -> bool:
        return r.status_code in (401, 403)

    def scan(
        self, channel: str, party: Party, seen: Seen, text: str, request: str, *, asked: str = ""
    ) -> None:
        """Safety over raw text: every token in it belongs to something released (tokens the
        request itself carried are not counted)."""
        mentioned = find_tokens(asked) if asked else set()
        for token in find_tokens(text) - mentioned:
            owners = self.u.owners.get(token)
            if not owners or any(allowed(o, seen.strict, self.u, STRICT) for o in owners):
                continue
            loose = any(allowed(o, seen.loose, self.u, LENIENT) for o in owners)
            owner = owners[0]
            what = owner[0] if owner[0] != "never" else "never: " + owner[1]
            if self.source_of(owner) == party.key:
                what += " (back to its source)"
            self.extra(
                channel,
                f"leak: {what}",
                party,
                request,
                f"{token} ({describe(owner)})",
                loose=loose,
            )

    def source_of(self, owner: tuple[str, ...]) -> str | None:
        """The partner key of the source of the event a token owner belongs to."""
        if owner[0] in ("never", "group"):
            return None
        found = next((e for e in self.world.events if e.uuid == owner[1]), None)
        return found.source if found else None

    def compare_set(
        self,
        channel: str,
        party: Party,
        request: str,
        got: list[Any],
        strict: set[str],
        loose: set[str],
    ) -> None:
        """An answer's items against the release: nothing beyond it, all of it."""
        got_set = {str(g) for g in got}
        if len(got) != len(got_set):
            self.fail(
                channel,
                "duplicates across pages",
                party,
                request,
                f"{len(got)} items, {len(got_set)} distinct",
            )
        for x in sorted(got_set - strict):
            self.extra(
                channel, "answer includes what is not released", party, request, x, loose=x in loose
            )
        for x in sorted(strict - got_set):
            self.fail(channel, "released item missing from the answer", party, request, x)

    # -- MISP JSON documents ---------------------------------------------------------------

    def check_sightings(
        self, channel: str, party: Party, seen: Seen, doc: Any, request: str
    ) -> None:
        for key, value in _walk(doc):
            if key == "Sighting":
                for s in value if isinstance(value, list) else [value]:
                    if isinstance(s, dict):
                        self.check_sighting(channel, party, seen, s, request)

    def check_sighting(
        self, channel: str, party: Party, seen: Seen, s: dict[str, Any], request: str
    ) -> None:
        attr = str(s.get("attribute_uuid") or "")
        if attr and attr not in _attribute_uuids(seen.strict):
            self.extra(
                channel,
                "sighting on an attribute not released",
                party,
                request,
                attr,
                loose=attr in _attribute_uuids(seen.loose),
            )
        org = s.get("Organisation")
        shown = str(org.get("uuid") or "") if isinstance(org, dict) else ""
        org_id = str(s.get("org_id") if s.get("org_id") is not None else "0")
        if not shown and org_id in ("0", ""):
            return  # anonymised
        really = self.sighting_uuid.get(
            str(s.get("uuid") or ""), self.sighting_by.get(str(s.get("source") or ""), ("?", ""))
        )[0]
        if shown and shown != party.uuid:
            name = org.get("name") if isinstance(org, dict) else ""
            self.fail(
                channel,
                "another organisation's sighting not anonymised",
                party,
                request,
                f"sighting {s.get('uuid')} shows organisation {name!r} ({shown})",
            )
        elif really != party.key:
            self.fail(
                channel,
                "sighting shown as the caller's own though another organisation made it",
                party,
                request,
                f"sighting {s.get('uuid')} (source {s.get('source')}) made by {really}",
            )

    def check_event_doc(
        self,
        channel: str,
        party: Party,
        seen: Seen,
        uuid: str,
        doc: dict[str, Any],
        request: str,
        *,
        distribution: Callable[[Any], int] | None = None,
    ) -> None:
        """One released event as MISP JSON against the oracle's release."""
        rel, loose = seen.strict[uuid], seen.loose[uuid]
        e = rel.event
        fail = lambda check, detail: self.fail(channel, check, party, request, detail)  # noqa: E731
        standalone = {a.get("uuid"): a for a in _live(doc.get("Attribute"))}
        objects = {o.get("uuid"): o for o in _live(doc.get("Object"))}
        reports = {r.get("uuid") for r in _live(doc.get("EventReport"))}
        for u in sorted(rel.standalone - set(standalone)):
            fail("released attribute missing", f"event {e.uuid[:8]}: attribute {u}")
        for u in sorted(set(rel.objects) - set(objects)):
            fail("released object missing", f"event {e.uuid[:8]}: object {u}")
        for u in sorted(set(rel.reports) - reports):
            fail("released report missing", f"event {e.uuid[:8]}: report {u}")
        for u in sorted(reports - set(rel.reports)):
            self.extra(
                channel,
                "report not released",
                party,
                request,
                f"event {e.uuid[:8]}: report {u}",
                loose=u in loose.reports,
            )
        for u in sorted(set(standalone) - rel.standalone):
            self.extra(
                channel,
                "attribute not released",
                party,
                request,
                f"event {e.uuid[:8]}: attribute {u}",
                loose=u in loose.standalone,
            )
        for u, obj in objects.items():
            got = {a.get("uuid") for a in _live(obj.get("Attribute"))}
            if u not in rel.objects:
                ok = u in loose.objects and got <= set(loose.attributes)
                self.extra(
                    channel,
                    "object not released",
                    party,
                    request,
                    f"event {e.uuid[:8]}: object {u}",
                    loose=ok,
                )
                continue
            want = {a.uuid for a in rel.objects[u][0].attributes}
            if got != want:
                fail(
                    "object not whole",
                    f"event {e.uuid[:8]}: object {u} has {sorted(got)}, expected {sorted(want)}",
                )
        # labels and tags: the effective label on every element, no other TLP tag
        self.check_tags(channel, party, rel, doc, request, rel.rank, rel.event_tags, "event")
        for a in list(standalone.values()) + [
            a for o in objects.values() for a in _live(o.get("Attribute"))
        ]:
            found = loose.attributes.get(a.get("uuid"))
            if found is not None:
                attr, rank = found
                self.check_tags(
                    channel,
                    party,
                    rel,
                    a,
                    request,
                    rank,
                    loose.attribute_tags.get(attr.uuid, set()),
                    f"attribute {attr.uuid[:8]}",
                )
        for key, value in _walk(doc):
            if key == "ShadowAttribute" and value:
                fail("proposal sent", f"event {e.uuid[:8]}: ShadowAttribute {str(value)[:160]}")
                break
        self.check_sightings(channel, party, Seen({uuid: rel}, {uuid: loose}), doc, request)
        if "attribute_count" in doc:
            self.check_count(channel, party, rel, loose, doc["attribute_count"], request)
        self.check_attribution(channel, party, rel, doc, request)
        if distribution is not None:
            self.check_distribution(channel, party, rel, doc, request, distribution)

    def check_count(
        self, channel: str, party: Party, rel: Release, loose: Release, count: Any, request: str
    ) -> None:
        if str(count) != str(rel.attribute_count):
            self.extra(
                channel,
                "attribute_count counts what is not released",
                party,
                request,
                f"event {rel.event.uuid[:8]}: attribute_count {count}, released {rel.attribute_count}",
                loose=str(count) == str(loose.attribute_count),
            )

    def check_tags(
        self,
        channel: str,
        party: Party,
        rel: Release,
        element: dict[str, Any],
        request: str,
        rank: int | None,
        expected: set[str],
        what: str,
    ) -> None:
        names = _tag_names(element)
        colours = [n for n in names if tlp_rank_of(n) is not None]
        if rank is not None and [tlp_rank_of(n) for n in colours] != [rank]:
            self.fail(
                channel,
                "TLP tag is not the element's effective label",
                party,
                request,
                f"{what} of event {rel.event.uuid[:8]}: {colours}, expected [{label_tag(rank)}]",
            )
        others = {n for n in names if tlp_rank_of(n) is None}
        for n in sorted(others - expected):
            self.fail(channel, "tag not released", party, request, f"{what}: {n!r}")
        for n in sorted(expected - others):
            self.fail(channel, "released tag missing", party, request, f"{what}: {n!r}")

    def check_attribution(
        self, channel: str, party: Party, rel: Release, doc: Any, request: str
    ) -> None:
        """TLP:EX:CHR: "nothing that names or narrows down the creator leaves"; otherwise the
        creator shown is the submitter, nobody else."""
        source = rel.source
        if rel.event.chr and not rel.own:
            for secret in (source.uuid, source.name.lower()):
                where = _path_of(doc, secret)
                if where is not None:
                    self.fail(
                        channel,
                        "TLP:EX:CHR event names its creator",
                        party,
                        request,
                        f"event {rel.event.uuid[:8]} has {secret!r} at {where}",
                    )
            return
        orgc = doc.get("Orgc") if isinstance(doc, dict) else None
        if isinstance(orgc, dict) and orgc.get("uuid") and orgc["uuid"] != source.uuid:
            self.fail(
                channel,
                "creator is not the submitter",
                party,
                request,
                f"event {rel.event.uuid[:8]}: Orgc {orgc['uuid']}, submitter {source.uuid}",
            )

    def check_distribution(
        self,
        channel: str,
        party: Party,
        rel: Release,
        doc: dict[str, Any],
        request: str,
        expected: Callable[[Any], int],
    ) -> None:
        """``/misp`` serves distribution as held (no second downgrade); a push downgrades as a
        pushing MISP does."""
        e = rel.event
        elements: dict[str, Any] = {a.uuid: a for _, a in e.all_attributes()} | {
            o.uuid: o for o in e.objects
        }
        elements |= {r.uuid: r for r in e.reports}
        pairs = [(e, doc, "event")]
        for key in ("Attribute", "Object", "EventReport"):
            for x in doc.get(key) or []:
                pairs.append((elements.get(x.get("uuid")), x, key.lower()))
                for a in x.get("Attribute") or [] if key == "Object" else []:
                    pairs.append((elements.get(a.get("uuid")), a, "object attribute"))
        for element, got, what in pairs:
            if element is None or got.get("distribution") is None:
                continue
            if str(got["distribution"]) != str(expected(element)):
                self.fail(
                    channel,
                    "distribution is not the one MISP would show",
                    party,
                    request,
                    f"{what} {str(got.get('uuid'))[:8]} of event {e.uuid[:8]}: {got['distribution']}, expected {expected(element)}",
                )

    def check_attribute_items(
        self, channel: str, party: Party, seen: Seen, items: list[dict[str, Any]], request: str
    ) -> None:
        for item in items:
            rel = next((r for r in seen.loose.values() if item.get("uuid") in r.attributes), None)
            if rel is None:
                continue  # compare_set reported it
            attr, rank = rel.attributes[item["uuid"]]
            self.check_tags(
                channel,
                party,
                rel,
                item,
                request,
                rank,
                rel.attribute_tags.get(attr.uuid, set()),
                f"attribute {attr.uuid[:8]}",
            )
            for key, value in _walk(item):
                if key == "ShadowAttribute" and value:
                    self.fail(
                        channel,
                        "proposal sent",
                        party,
                        request,
                        f"attribute {attr.uuid[:8]}: {str(value)[:160]}",
                    )
                    break
            self.check_sightings(channel, party, seen, item, request)

    # -- paging ----------------------------------------------------------------------------

    def rest_pages(
        self, channel: str, party: Party, seen: Seen, path: str, limit: int, *, asked: str = ""
    ) -> tuple[list[dict[str, Any]], bool]:
        """Follow ``next_cursor``; every page is scanned; pages and cursors must speak of
        released rows only: full pages, a cursor only when more released rows follow.
        Returns (items, refused)."""
        items: list[dict[str, Any]] = []
        cursor = None
        sep = "&" if "?" in path else "?"
        sizes = []
        for _ in range(60):
            url = f"{path}{sep}limit={limit}" + (f"&cursor={quote(cursor)}" if cursor else "")
            r = self.get(party, url)
            self.scan(channel, party, seen, r.text, f"GET {path}", asked=asked)
            if self.refused(r):
                return items, True
            if r.status_code != 200:
                self.fail(channel, f"answered {r.status_code}", party, f"GET {url}", r.text[:300])
                return items, False
            body = r.json()
            page = body.get("items") or []
            items += page
            sizes.append(len(page))
            cursor = body.get("next_cursor")
            if not cursor:
                break
            self.check_cursor(channel, party, path, cursor, limit)
        if any(n != limit for n in sizes[:-1]) or (len(sizes) > 1 and sizes[-1] == 0):
            self.fail(
                channel,
                "pages or cursors computed over withheld rows",
                party,
                f"GET {path} limit={limit}",
                f"page sizes {sizes} for {len(items)} item(s)",
            )
        return items, False

    def check_cursor(self, channel: str, party: Party, path: str, cursor: str, limit: int) -> None:
        """ "Cursors are opaque and signed": a client can neither read nor forge one."""
        if channel in self._forged:
            return
        self._forged.add(channel)
        content = decoded_cursor(cursor)
        if content is not None:
            self.fail(
                channel,
                "cursor is readable (not opaque)",
                party,
                f"GET {path} limit={limit}",
                f"next_cursor {cursor!r} decodes to {content!r}",
            )
        if isinstance(content, dict):
            forged = {k: (max(v - 1, 0) if isinstance(v, int) else v) for k, v in content.items()}
            token = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        else:
            token = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
        sep = "&" if "?" in path else "?"
        r = self.get(party, f"{path}{sep}limit={limit}&cursor={quote(token)}")
        if r.status_code == 200:
            self.fail(
                channel,
                "forged cursor accepted (not signed)",
                party,
                f"GET {path} cursor={token}",
                f"answered 200 to a cursor the hub never handed out (made from {cursor!r})",
            )

    def misp_pages(
        self,
        channel: str,
        party: Party,
        seen: Seen,
        path: str,
        uuids: Callable[[Any], list[Any]],
        want: tuple[set[str], set[str]],
        *,
        limit: int = 1,
    ) -> None:
        """MISP paging (``limit``, ``page``): full pages until the released rows run out, then
        empty ones."""
        got: list[Any] = []
        sizes: list[int] = []
        for page in range(1, len(want[1]) // limit + 4):
            req = {"limit": limit, "page": page}
            r = self.post(party, path, req)
            self.scan(channel, party, seen, r.text, f"POST {path} {req}")
            if r.status_code != 200:
                return
            found = uuids(r.json())
            sizes.append(len(found))
            got += found
            if not found:
                break
        request = f"POST {path} limit={limit} page=1…"
        self.compare_set(channel + " paged", party, request, got, *want)
        short = next((i for i, n in enumerate(sizes) if n < limit), len(sizes))
        if any(sizes[short + 1 :]):  # a short page, then more: a withheld row took a place
            self.fail(
                channel, "pages computed over withheld rows", party, request, f"page sizes {sizes}"
            )

    # -- REST ------------------------------------------------------------------------------

    def rest(self, party: Party, probes: Probes) -> None:
        seen = self.seen(party, Channel.REST)
        ids = lambda items: [i.get("uuid") for i in items]  # noqa: E731
        # the list, paged
        small = 1 if probes.deep else 500  # the probing partner pages one by one
        items, refused = self.rest_pages("rest-list", party, seen, "/api/v1/events", small)
        if not refused or seen.strict:
            self.compare_set(
                "rest-list",
                party,
                "GET /api/v1/events",
                ids(items),
                set(seen.strict),
                set(seen.loose),
            )
        for item in items:
            if item.get("uuid") in seen.strict:
                self.check_summary("rest-list", party, seen, item, "GET /api/v1/events")
        for type_ in probes.types:
            path = f"/api/v1/events?type={quote(type_)}"
            got, _ = self.rest_pages("rest-list ?type", party, seen, path, 1, asked=type_)
            has = lambda r, t=type_: any(a.type == t for a, _ in r.attributes.values())  # noqa: E731
            self.compare_set(
                "rest-list ?type",
                party,
                f"GET {path}",
                ids(got),
                _event_uuids(seen.strict, has),
                _event_uuids(seen.loose, has),
            )
        for tag in probes.tags:
            path = f"/api/v1/events?tag={quote(tag)}"
            got, _ = self.rest_pages("rest-list ?tag", party, seen, path, 1, asked=tag)
            self.compare_tag_filter("rest-list ?tag", party, f"GET {path}", tag, ids(got), seen)
        for since in probes.since:
            path = f"/api/v1/events?since={since}"
            got, _ = self.rest_pages("rest-list ?since", party, seen, path, 2)
            recent = lambda r, t=since: r.event.timestamp >= t  # noqa: E731
            self.compare_set(
                "rest-list ?since",
                party,
                f"GET {path}",
                ids(got),
                _event_uuids(seen.strict, recent),
                _event_uuids(seen.loose, recent),
            )
        # one event: as MISP JSON, as STIX, with deleted elements
        missing = self.get(party, f"/api/v1/events/{self.ghost}")
        for e in probes.events:
            variants = [
                ("", Channel.REST, "rest-view"),
                ("?format=stix", Channel.STIX, "rest-stix"),
            ]
            if probes.deep and e in probes.events[:2]:
                variants.append(
                    ("?include_deleted=true", Channel.REST, "rest-view ?include_deleted")
                )
            for suffix, chan, name in variants:
                url = f"/api/v1/events/{e.uuid}{suffix}"
                r = self.get(party, url)
                s = self.seen(party, chan)
                self.scan(name, party, s, r.text, f"GET {url}", asked=url)
                if e.uuid not in s.strict:
                    if r.status_code == 200:
                        self.extra(
                            name,
                            "withheld event served",
                            party,
                            f"GET {url}",
                            e.uuid,
                            loose=e.uuid in s.loose,
                        )
                    else:
                        self.same_as_missing(name, party, f"GET {url}", r, missing, e.uuid)
                elif r.status_code != 200:
                    self.fail(
                        name,
                        "released event not served",
                        party,
                        f"GET {url}",
                        f"{r.status_code} {r.text[:200]}",
                    )
                elif chan is Channel.STIX:
                    self.check_stix_bundle(name, party, s, e.uuid, r.json(), f"GET {url}")
                else:
                    self.check_event_doc(
                        name, party, s, e.uuid, r.json().get("Event", {}), f"GET {url}"
                    )
        # attribute search
        for value in probes.values + [probes.nothing]:
            path = f"/api/v1/attributes?value={quote(value)}"
            got, _ = self.rest_pages("rest-attributes ?value", party, seen, path, 1, asked=value)
            is_value = lambda a, v=value: a.value == v  # noqa: E731
            want = _attribute_uuids(seen.strict, is_value)
            self.compare_set(
                "rest-attributes ?value",
                party,
                f"GET {path}",
                ids(got),
                want,
                _attribute_uuids(seen.loose, is_value),
            )
            self.check_attribute_items("rest-attributes", party, seen, got, f"GET {path}")
            if not want and value != probes.nothing:
                self.same_answer(party, path, value, probes.nothing)
        for type_ in probes.types:
            path = f"/api/v1/attributes?type={quote(type_)}"
            got, _ = self.rest_pages("rest-attributes ?type", party, seen, path, 2, asked=type_)
            is_type = lambda a, t=type_: a.type == t  # noqa: E731
            self.compare_set(
                "rest-attributes ?type",
                party,
                f"GET {path}",
                ids(got),
                _attribute_uuids(seen.strict, is_type),
                _attribute_uuids(seen.loose, is_type),
            )
        got, _ = self.rest_pages(
            "rest-attributes", party, seen, "/api/v1/attributes", min(small + 1, 500)
        )
        self.compare_set(
            "rest-attributes",
            party,
            "GET /api/v1/attributes",
            ids(got),
            _attribute_uuids(seen.strict),
            _attribute_uuids(seen.loose),
        )
        self.check_attribute_items("rest-attributes", party, seen, got, "GET /api/v1/attributes")
        # what this organisation received, over any channel
        r = self.get(party, "/api/v1/me/releases?limit=500")
        everything = seen
        for chan in Channel:
            everything = everything.union(self.seen(party, chan))
        self.scan("rest-me-releases", party, everything, r.text, "GET /api/v1/me/releases")

    def check_summary(
        self, channel: str, party: Party, seen: Seen, item: dict[str, Any], request: str
    ) -> None:
        rel, loose = seen.strict[item["uuid"]], seen.loose[item["uuid"]]
        if "attribute_count" in item:
            self.check_count(channel, party, rel, loose, item["attribute_count"], request)
        if isinstance(item.get("tags"), list):
            # the summary names its label in ``tlp``; a TLP tag among ``tags`` must agree
            names = _tag_names(item)
            rank = rel.rank if any(tlp_rank_of(n) is not None for n in names) else None
            self.check_tags(channel, party, rel, item, request, rank, rel.event_tags, "event")
        if isinstance(item.get("tlp"), str) and item["tlp"] != LABELS[rel.rank]:
            self.fail(
                channel,
                "TLP of the summary is not the event's label",
                party,
                request,
                f"{item['tlp']} vs {LABELS[rel.rank]}",
            )
        doc = dict(item)
        if isinstance(item.get("orgc"), dict):
            doc["Orgc"] = item["orgc"]
        self.check_attribution(channel, party, rel, doc, request)

    def compare_tag_filter(
        self, channel: str, party: Party, request: str, tag: str, got: list[Any], seen: Seen
    ) -> None:
        """A tag filter matches released tags only: at most the events with the tag on the event
        or a released attribute (TLP tags: their effective labels), at least those with it on
        the event."""
        t = tag.lower()

        def matches(releases: dict[str, Release], *, on_attributes: bool) -> set[str]:
            out = set()
            for u, r in releases.items():
                names = {x.lower() for x in r.event_tags} | {label_tag(r.rank)}
                if on_attributes:
                    names |= {label_tag(rank) for _, rank in r.attributes.values()}
                    for more in r.attribute_tags.values():
                        names |= {x.lower() for x in more}
                if t in names:
                    out.add(u)
            return out

        at_least = matches(seen.strict, on_attributes=False)
        at_most, loose = (
            matches(seen.strict, on_attributes=True),
            matches(seen.loose, on_attributes=True),
        )
        for x in sorted(set(got) - at_most):
            self.extra(
                channel,
                "tag filter matches what is not released",
                party,
                request,
                f"{tag!r} matched {x}",
                loose=x in loose,
            )
        for x in sorted(at_least - set(got)):
            self.fail(
                channel, "tag filter misses a released event", party, request, f"{tag!r} missed {x}"
            )

    def same_as_missing(
        self, channel: str, party: Party, request: str, r: Any, missing: Any, uuid: str
    ) -> None:
        """ "A uuid the caller may not see is answered as a missing one"."""
        if self.refused(r) and self.refused(missing):
            return
        a = (r.status_code, _strip(r.text, uuid))
        b = (missing.status_code, _strip(missing.text, self.ghost))
        if a != b:
            self.fail(
                channel,
                "withheld event answered otherwise than a missing one",
                party,
                request,
                f"{a[0]} {a[1][:200]!r} vs missing {b[0]} {b[1][:200]!r}",
            )

    def same_answer(self, party: Party, path: str, value: str, nothing: str) -> None:
        """ "the answer to a query is the same whether hidden data matching it exists or not"."""
        if not any(value == a.value for e in self.world.events for _, a in e.all_attributes()):
            return
        mine = self.get(party, path + "&limit=1")
        other = self.get(party, path.replace(quote(value), quote(nothing)) + "&limit=1")
        a = (mine.status_code, _strip(mine.text, value))
        b = (other.status_code, _strip(other.text, nothing))
        if a != b:
            self.fail(
                "rest-attributes ?value",
                "a hidden value changes the answer",
                party,
                f"GET {path}&limit=1",
                f"{a[1][:200]!r} vs for a value nobody has {b[1][:200]!r}",
            )

    # -- STIX --------------------------------------------------------------------------------

    def check_stix_objects(
        self,
        channel: str,
        party: Party,
        seen: Seen,
        objects: list[dict[str, Any]],
        request: str,
        *,
        exact_label: int | None = None,
    ) -> None:
        """ "The TLP tag and STIX marking travel on every element that goes out": every object
        carries a TLP marking no lower than the label of what it carries; TLP:EX:CHR events'
        objects name no creator."""
        labels: dict[str, int] = {}
        chr_events: list[Release] = []

        def mark(text: str, rank: int) -> None:
            for token in find_tokens(text):  # a value two elements share: the lower label
                labels[token] = min(labels.get(token, rank), rank)

        for u, rel in seen.loose.items():
            mark(u + " " + rel.event.info, rel.rank)
            if rel.event.chr and not rel.own:
                chr_events.append(rel)
            for a, rank in rel.attributes.values():
                mark(f"{a.uuid} {a.value} {a.comment}", rank)
            for o, rank in rel.objects.values():
                mark(o.uuid, rank)
            for r in rel.reports.values():
                mark(f"{r.uuid} {r.name} {r.content}", rel.rank)
        for obj in objects:
            if obj.get("type") in ("marking-definition", "extension-definition"):
                continue
            text = json.dumps(obj).lower()
            marks = [MARKINGS[m] for m in obj.get("object_marking_refs") or [] if m in MARKINGS]
            tokens = find_tokens(text)
            # What the object itself carries; a reference to another object is that object's.
            own = {k: v for k, v in obj.items() if not k.endswith(("_ref", "_refs"))}
            carried = find_tokens(json.dumps(own).lower())
            need = max((labels[t] for t in carried if t in labels), default=None)
            if not marks:
                if need is not None or obj.get("type") != "identity":
                    self.fail(
                        channel,
                        "STIX object without a TLP marking",
                        party,
                        request,
                        f"{obj.get('id')}",
                    )
                continue
            mark_rank = max(marks)
            if need is not None and mark_rank < need:
                self.fail(
                    channel,
                    "STIX marking lower than the element's label",
                    party,
                    request,
                    f"{obj.get('id')} marked {LABELS[mark_rank]}, carries a {LABELS[need]} element",
                )
            if exact_label is not None and mark_rank != exact_label:
                self.fail(
                    channel,
                    "object in the wrong TLP collection",
                    party,
                    request,
                    f"{obj.get('id')} marked {LABELS[mark_rank]}",
                )
            for rel in chr_events:
                if not tokens & self.event_tokens(rel):
                    continue
                for secret in (rel.source.uuid, rel.source.name.lower()):
                    if secret in text:
                        self.fail(
                            channel,
                            "TLP:EX:CHR event names its creator",
                            party,
                            request,
                            f"{obj.get('id')} of event {rel.event.uuid[:8]} has {secret!r} at {_path_of(obj, secret)}",
                        )

    @staticmethod
    def event_tokens(rel: Release) -> set[str]:
        out = {rel.event.uuid} | find_tokens(rel.event.info)
        out |= {a.uuid for a, _ in rel.attributes.values()}
        out |= {o.uuid for o, _ in rel.objects.values()}
        return out

    def check_stix_bundle(
        self, channel: str, party: Party, seen: Seen, uuid: str, bundle: Any, request: str
    ) -> None:
        objects = (bundle.get("objects") or []) if isinstance(bundle, dict) else []
        one = Seen({uuid: seen.strict[uuid]}, {uuid: seen.loose[uuid]})
        self.check_stix_objects(channel, party, one, objects, request)
        self.stix_liveness(channel, party, [seen.strict[uuid]], json.dumps(objects), request)

    def stix_liveness(
        self, channel: str, party: Party, rels: list[Release], text: str, request: str
    ) -> None:
        low = text.lower()
        for rel in rels:
            if rel.event.info.lower() not in low:
                self.fail(
                    channel,
                    "released event title missing",
                    party,
                    request,
                    f"event {rel.event.uuid[:8]} {rel.event.info!r}",
                )
            for a, _ in rel.attributes.values():
                if a.type in STIX_VALUE_TYPES and a.value.lower() not in low:
                    self.fail(
                        channel,
                        "released attribute value missing",
                        party,
                        request,
                        f"event {rel.event.uuid[:8]}: {a.type} {a.value}",
                    )

    # -- /misp ---------------------------------------------------------------------------------

    def misp(self, party: Party, probes: Probes) -> None:
        seen = self.seen(party, Channel.MISP)
        events, attrs = _found_events, _found_attributes
        all_events = (set(seen.strict), set(seen.loose))
        # index
        request = "POST /misp/events/index {}"
        r = self.post(party, "/misp/events/index", {})
        self.scan("misp-index", party, seen, r.text, request)
        rows = r.json() if r.status_code == 200 and isinstance(r.json(), list) else []
        if r.status_code == 200 or seen.strict:
            self.compare_set(
                "misp-index", party, request, [x.get("uuid") for x in rows], *all_events
            )
        if r.status_code == 200 and r.headers.get("X-Result-Count") not in (None, str(len(rows))):
            self.fail(
                "misp-index",
                "X-Result-Count counts what is not in the answer",
                party,
                request,
                f"{r.headers.get('X-Result-Count')} vs {len(rows)} rows",
            )
        ids = {str(row.get("uuid")): str(row.get("id")) for row in rows}  # what the index shows
        for row in rows:
            u = row.get("uuid")
            if u not in seen.strict:
                continue
            rel = seen.strict[u]
            if "attribute_count" in row:
                self.check_count(
                    "misp-index", party, rel, seen.loose[u], row["attribute_count"], request
                )
            if "Tag" in row:
                self.check_tags(
                    "misp-index", party, rel, row, request, rel.rank, rel.event_tags, "event"
                )
            self.check_attribution("misp-index", party, rel, row, request)
            self.check_distribution(
                "misp-index",
                party,
                rel,
                {"distribution": row.get("distribution")},
                request,
                held_distribution,
            )
        req = {"minimal": 1, "published": 1}
        r = self.post(party, "/misp/events/index", req)
        self.scan("misp-index", party, seen, r.text, f"POST /misp/events/index {req}")
        if r.status_code == 200:
            published = lambda x: x.event.published  # noqa: E731
            self.compare_set(
                "misp-index minimal",
                party,
                f"POST /misp/events/index {req}",
                [x.get("uuid") for x in r.json()],
                _event_uuids(seen.strict, published),
                _event_uuids(seen.loose, published),
            )
        if probes.deep:
            self.misp_pages(
                "misp-index",
                party,
                seen,
                "/misp/events/index",
                lambda body: [x.get("uuid") for x in body],
                all_events,
            )
        for tag in probes.tags:
            req = {"tags": [tag]}
            r = self.post(party, "/misp/events/index", req)
            self.scan(
                "misp-index tags", party, seen, r.text, f"POST /misp/events/index {req}", asked=tag
            )
            if r.status_code == 200:
                self.compare_tag_filter(
                    "misp-index tags",
                    party,
                    f"POST /misp/events/index {req}",
                    tag,
                    [x.get("uuid") for x in r.json()],
                    seen,
                )
        # view, by uuid and by id; HEAD
        missing = self.get(party, f"/misp/events/view/{self.ghost}")
        # Released events also come whole from restSearch below; the view is asked for every
        # withheld one (it must answer as a missing one) and, by the probing partner, for all.
        for e in [e for e in probes.events if probes.deep or e.uuid not in seen.strict]:
            url = f"/misp/events/view/{e.uuid}"
            r = self.get(party, url)
            self.scan("misp-view", party, seen, r.text, f"GET {url}", asked=url)
            head = self.hub.client.head(url, headers=self.headers(party)) if probes.deep else None
            if e.uuid in seen.strict and e is not probes.events[0]:
                head = None  # HEAD of withheld events, and of one released
            if e.uuid not in seen.strict:
                if r.status_code == 200:
                    self.extra(
                        "misp-view",
                        "withheld event served",
                        party,
                        f"GET {url}",
                        e.uuid,
                        loose=e.uuid in seen.loose,
                    )
                else:
                    self.same_as_missing("misp-view", party, f"GET {url}", r, missing, e.uuid)
                if head is not None and head.status_code == 200:
                    self.extra(
                        "misp-view",
                        "HEAD confirms a withheld event",
                        party,
                        f"HEAD {url}",
                        "200",
                        loose=e.uuid in seen.loose,
                    )
            elif r.status_code != 200:
                self.fail(
                    "misp-view",
                    "released event not served",
                    party,
                    f"GET {url}",
                    f"{r.status_code} {r.text[:200]}",
                )
            else:
                self.check_event_doc(
                    "misp-view",
                    party,
                    seen,
                    e.uuid,
                    r.json().get("Event", {}),
                    f"GET {url}",
                    distribution=held_distribution,
                )
                if head is not None and head.status_code != 200:
                    self.fail(
                        "misp-view",
                        "HEAD denies a released event",
                        party,
                        f"HEAD {url}",
                        str(head.status_code),
                    )
        if probes.deep:
            missing_id = self.get(party, "/misp/events/view/987654")
            for n in range(1, len(self.world.events) + 3):
                if str(n) in ids.values():
                    continue
                url = f"/misp/events/view/{n}"
                r = self.get(party, url)
                self.scan("misp-view", party, seen, r.text, f"GET {url}")
                a = (r.status_code, r.text.replace(f"/{n}", "/N").replace(f" {n}", " N"))
                b = (
                    missing_id.status_code,
                    missing_id.text.replace("/987654", "/N").replace(" 987654", " N"),
                )
                if a != b and not (self.refused(r) and self.refused(missing_id)):
                    self.fail(
                        "misp-view by id",
                        "an id not in the caller's index answers otherwise than a missing one",
                        party,
                        f"GET {url}",
                        f"{a[0]} {a[1][:160]!r} vs missing {b[0]} {b[1][:160]!r}",
                    )
        for u, n in [(u, n) for u, n in ids.items() if u in seen.strict][:1] if probes.deep else []:
            url = f"/misp/events/view/{n}"
            r = self.get(party, url)
            self.scan("misp-view", party, seen, r.text, f"GET {url}")
            if r.status_code == 200:
                self.check_event_doc(
                    "misp-view",
                    party,
                    seen,
                    u,
                    r.json().get("Event", {}),
                    f"GET {url}",
                    distribution=held_distribution,
                )
        # events/restSearch
        request = "POST /misp/events/restSearch {}"
        r = self.post(party, "/misp/events/restSearch", {})
        self.scan("misp-restsearch", party, seen, r.text, request)
        if r.status_code == 200:
            found = [x.get("Event", {}) for x in r.json().get("response") or []]
            self.compare_set(
                "misp-restsearch", party, request, [x.get("uuid") for x in found], *all_events
            )
            for doc in found:
                if doc.get("uuid") in seen.strict:
                    self.check_event_doc(
                        "misp-restsearch",
                        party,
                        seen,
                        doc["uuid"],
                        doc,
                        request,
                        distribution=held_distribution,
                    )
        if probes.deep:
            self.misp_pages(
                "misp-restsearch", party, seen, "/misp/events/restSearch", events, all_events
            )

        def search(
            name: str,
            path: str,
            req: dict[str, Any],
            pick: Callable[[Any], list[Any]],
            want: tuple[set[str], set[str]],
            asked: str,
        ) -> None:
            r = self.post(party, path, req)
            self.scan(name, party, seen, r.text, f"POST {path} {req}", asked=asked)
            if r.status_code != 200:
                return
            got = pick(r.json())
            if "limit" in req:
                if len(got) > 1 or (want[0] and not got):
                    self.fail(
                        name,
                        "paging over withheld matches",
                        party,
                        f"POST {path} {req}",
                        f"{got} vs {sorted(want[0])}",
                    )
                for x in got:
                    if x not in want[0]:
                        self.extra(
                            name,
                            "answer includes what is not released",
                            party,
                            f"POST {path} {req}",
                            str(x),
                            loose=x in want[1],
                        )
            else:
                self.compare_set(name, party, f"POST {path} {req}", got, *want)

        def event_with(keep: Callable[[Attr], bool]) -> tuple[set[str], set[str]]:
            has = lambda r: any(keep(a) for a, _ in r.attributes.values())  # noqa: E731
            return _event_uuids(seen.strict, has), _event_uuids(seen.loose, has)

        def attributes_with(keep: Callable[[Attr], bool]) -> tuple[set[str], set[str]]:
            return _attribute_uuids(seen.strict, keep), _attribute_uuids(seen.loose, keep)

        for value in probes.values + [probes.nothing]:
            keep = lambda a, v=value: a.value == v  # noqa: E731
            for req in ({"value": value}, {"value": value, "limit": 1, "page": 1}):
                search(
                    "misp-restsearch value",
                    "/misp/events/restSearch",
                    req,
                    events,
                    event_with(keep),
                    value,
                )
                search(
                    "misp-attributes value",
                    "/misp/attributes/restSearch",
                    req,
                    attrs,
                    attributes_with(keep),
                    value,
                )
            if value != probes.nothing and not attributes_with(keep)[0]:
                self.misp_same_answer(party, value, probes.nothing)
        for pattern, match in probes.patterns:
            keep = lambda a, m=match: m(a.value)  # noqa: E731
            for req in ({"value": pattern}, {"value": pattern, "limit": 1, "page": 1}):
                search(
                    "misp-restsearch LIKE",
                    "/misp/events/restSearch",
                    req,
                    events,
                    event_with(keep),
                    pattern,
                )
                search(
                    "misp-attributes LIKE",
                    "/misp/attributes/restSearch",
                    req,
                    attrs,
                    attributes_with(keep),
                    pattern,
                )
        for type_ in probes.types:
            keep = lambda a, t=type_: a.type == t  # noqa: E731
            search(
                "misp-restsearch type",
                "/misp/events/restSearch",
                {"type": type_},
                events,
                event_with(keep),
                type_,
            )
            search(
                "misp-attributes type",
                "/misp/attributes/restSearch",
                {"type": type_},
                attrs,
                attributes_with(keep),
                type_,
            )
        for tag in probes.tags:
            req = {"tags": [tag]}
            r = self.post(party, "/misp/events/restSearch", req)
            self.scan(
                "misp-restsearch tags",
                party,
                seen,
                r.text,
                f"POST /misp/events/restSearch {req}",
                asked=tag,
            )
            if r.status_code == 200:
                self.compare_tag_filter(
                    "misp-restsearch tags",
                    party,
                    f"POST /misp/events/restSearch {req}",
                    tag,
                    events(r.json()),
                    seen,
                )
        for e in [e for e in probes.events if e.uuid not in seen.strict][:2] if probes.deep else []:
            req = {"eventinfo": e.info}
            search(
                "misp-restsearch eventinfo",
                "/misp/events/restSearch",
                req,
                events,
                ({e.uuid} & set(seen.strict), {e.uuid} & set(seen.loose)),
                e.info,
            )
        # attributes/restSearch, paged over everything
        request = "POST /misp/attributes/restSearch {}"
        r = self.post(party, "/misp/attributes/restSearch", {})
        self.scan("misp-attributes", party, seen, r.text, request)
        if r.status_code == 200:
            found = (r.json().get("response") or {}).get("Attribute") or []
            self.compare_set(
                "misp-attributes",
                party,
                request,
                [a.get("uuid") for a in found],
                *attributes_with(lambda a: True),
            )
            self.check_attribute_items("misp-attributes", party, seen, found, request)
        if probes.deep:
            self.misp_pages(
                "misp-attributes",
                party,
                seen,
                "/misp/attributes/restSearch",
                attrs,
                attributes_with(lambda a: True),
                limit=2,
            )
        # sightings (the probing partner)
        for e in probes.events if probes.deep else []:
            req = {"id": e.uuid}
            self.sightings_answer(party, seen, "/misp/sightings/restSearch/event", req, e, None)
            for _, a in list(e.all_attributes())[: 1 if probes.deep else 0]:
                self.sightings_answer(
                    party, seen, "/misp/sightings/restSearch/attribute", {"id": a.uuid}, e, a.uuid
                )

    def misp_same_answer(self, party: Party, value: str, nothing: str) -> None:
        mine = {"value": value, "limit": 1, "page": 1}
        a = self.post(party, "/misp/attributes/restSearch", mine)
        b = self.post(party, "/misp/attributes/restSearch", {**mine, "value": nothing})
        x = (a.status_code, _strip(a.text, value), a.headers.get("X-Result-Count"))
        y = (b.status_code, _strip(b.text, nothing), b.headers.get("X-Result-Count"))
        if x != y:
            self.fail(
                "misp-attributes value",
                "a hidden value changes the answer",
                party,
                f"POST /misp/attributes/restSearch {mine}",
                f"{x} vs for a value nobody has {y}",
            )

    def sightings_answer(
        self, party: Party, seen: Seen, path: str, req: dict[str, Any], e: Event, attr: str | None
    ) -> None:
        name, request = "misp-sightings", f"POST {path} {req}"
        r = self.post(party, path, req)
        self.scan(name, party, seen, r.text, request, asked=request)
        if r.status_code != 200:
            return
        found = [
            x.get("Sighting", x) for x in r.json().get("response") or [] if isinstance(x, dict)
        ]
        for s in found:
            self.check_sighting(name, party, seen, s, request)
        rel = seen.strict.get(e.uuid)
        want = set()
        if rel is not None:
            live = {x.source for x in self.world.sightings}
            for uuid, (_, a_uuid) in self.sighting_uuid.items():
                if a_uuid in rel.attributes and (attr is None or a_uuid == attr):
                    want.add(uuid)  # submitted with the event: by uuid, from anyone
            for source, (maker, a_uuid) in self.sighting_by.items():
                if source in live and maker == party.key and a_uuid in rel.attributes:
                    if attr is None or a_uuid == attr:
                        want.add(source)  # added later: its maker sees its own source text
        got = {str(s.get("uuid")) for s in found} | {str(s.get("source")) for s in found}
        for x in sorted(want - got):
            self.fail(name, "released sighting missing", party, request, x)

    # -- TAXII -------------------------------------------------------------------------------

    def taxii(self, party: Party, *, deep: bool) -> None:
        seen = self.seen(party, Channel.TAXII)
        h = {"Accept": TAXII_MEDIA}
        r = self.get(party, "/taxii2/cwn/collections/", **h)
        self.scan("taxii", party, seen, r.text, "GET collections")
        if r.status_code != 200:
            if seen.strict:
                self.fail(
                    "taxii",
                    "collections not served",
                    party,
                    "GET /taxii2/cwn/collections/",
                    str(r.status_code),
                )
            return
        for coll in r.json().get("collections") or []:
            alias = str(coll.get("alias") or coll.get("id"))
            if alias.startswith("tlp-") and not deep:
                continue
            objects, texts = self.taxii_pages(party, coll["id"], 10 if deep else 500)
            s = seen
            if alias.startswith("sector-"):
                sector = alias.removeprefix("sector-")
                s = seen.only(
                    lambda x, reading, sector=sector: (
                        sector in self.world.party(x.event.source).sectors
                        and (x.own or not x.event.chr or not reading.chr_out_of_sectors)
                    )
                )
            request = f"GET collections/{alias}/objects/"
            for t in texts:
                self.scan(f"taxii {alias}", party, s, t, request)
            exact = {
                "tlp-clear": 0,
                "tlp-green": 1,
                "tlp-amber": 2,
                "tlp-amber-strict": 3,
                "tlp-red": 4,
            }.get(alias)
            self.check_stix_objects(f"taxii {alias}", party, s, objects, request, exact_label=exact)
            if alias == "all" or alias.startswith("sector-"):
                self.stix_liveness(
                    f"taxii {alias}", party, list(s.strict.values()), json.dumps(objects), request
                )

    def taxii_pages(
        self, party: Party, ident: str, limit: int
    ) -> tuple[list[dict[str, Any]], list[str]]:
        objects: list[dict[str, Any]] = []
        texts = []
        following = None
        for _ in range(200):
            url = f"/taxii2/cwn/collections/{ident}/objects/?limit={limit}" + (
                f"&next={quote(following)}" if following else ""
            )
            r = self.get(party, url, Accept=TAXII_MEDIA)
            texts.append(r.text)
            if r.status_code != 200:
                break
            body = r.json()
            objects += body.get("objects") or []
            following = body.get("next")
            if not body.get("more") or not following:
                break
        return objects, texts

    # -- push ------------------------------------------------------------------------------

    def push(self, party: Party) -> None:
        if not party.push:
            return
        seen = self.seen(party, Channel.PUSH)
        bodies: dict[str, dict[str, Any]] = {}
        for method, path, body in self.hub.fake.of(party.key):
            self.scan(
                "push",
                party,
                seen,
                path + " " + body.decode("utf-8", "replace"),
                f"{method} {path}",
            )
            if method == "POST" and path.startswith(("/events/add", "/events/edit")):
                try:
                    doc = json.loads(body)
                except ValueError:
                    continue
                inner = doc.get("Event", doc)
                bodies[str(inner.get("uuid"))] = inner
        self.compare_set(
            "push",
            party,
            "events pushed to the partner's MISP",
            list(bodies),
            set(seen.strict),
            set(seen.loose),
        )
        for u, inner in bodies.items():
            if u in seen.strict:
                self.check_event_doc(
                    "push",
                    party,
                    seen,
                    u,
                    inner,
                    f"push of {u[:8]}",
                    distribution=pushed_distribution,
                )

    # -- notifications ---------------------------------------------------------------------

    def notifications(self, party: Party) -> None:
        for via in (False, True):
            chan = Channel.NOTIFY_VIA if via else Channel.NOTIFY
            name = "notify-via" if via else "notify"
            seen = self.seen(party, chan)
            path = "/api/v1/notifications" + ("?via=me" if via else "")
            items, _ = self.rest_pages(name, party, seen, path, 500)
            must, _, sectors = notification_observations(self.world, party, via=via, reading=STRICT)
            _, may, _ = notification_observations(self.world, party, via=via, reading=LENIENT)
            may_strict = {
                (x.event, x.attribute)
                for x in notification_observations(self.world, party, via=via, reading=STRICT)[1]
            }
            may_loose = {(x.event, x.attribute) for x in may}
            seen_pairs: set[tuple[str, str]] = set()
            cases: set[str] = set()
            for item in items:
                case = str(item.get("case") or "")
                cases.add(case)
                request = f"GET {path} ticket {item.get('ticket')}"
                if case not in seen.strict:
                    self.extra(
                        name,
                        "notification about an event the recipient may not see",
                        party,
                        request,
                        f"case {case}",
                        loose=case in seen.loose,
                    )
                for obs in item.get("observations") or []:
                    pair = (case, str(obs.get("attribute_uuid") or ""))
                    seen_pairs.add(pair)
                    if obs.get("attribute_uuid") and pair not in may_strict:
                        self.extra(
                            name,
                            "observation not released or not matching the recipient",
                            party,
                            request,
                            f"{obs.get('field')} {obs.get('value')} ({pair[1][:8]})",
                            loose=pair in may_loose,
                        )
                rel = seen.strict.get(case)
                if rel is not None and rel.event.chr and not rel.own:
                    self.check_attribution(name, party, rel, item, request)
                if item.get("ticket"):
                    for url in (
                        f"/api/v1/notifications/{item['ticket']}",
                        f"/api/v1/notifications/{item['ticket']}/lineage",
                    ):
                        r = self.get(party, url)
                        self.scan(name, party, seen, r.text, f"GET {url}")
            for x in sorted(must, key=lambda x: (x.event, x.value)):
                if (x.event, x.attribute) not in seen_pairs:
                    self.fail(
                        name,
                        "released matching observation not notified",
                        party,
                        f"GET {path}",
                        f"event {x.event[:8]} {x.value}",
                    )
            for u in sorted(sectors - cases):
                self.fail(
                    name,
                    "sector notification missing",
                    party,
                    f"GET {path}",
                    f"event {u[:8]} {sorted(event_sectors(self.world.event(u)))}",
                )

    # -- everything --------------------------------------------------------------------------

    def run(self, probes: Probes) -> list[Finding]:
        active = [p for p in self.world.partners if p.status == "active"]
        # The filter queries go to the partner that may see least (where hidden data would
        # show); the others get every event and the unfiltered channels.
        active.sort(key=lambda p: (len(self.seen(p, Channel.REST).strict), p.key))
        probing = {p.key for p in active[:1]}
        for party in self.world.partners:
            self._forged = set()
            if party.status != "active":
                p = probes.light()
            elif party.key in probing:
                p = probes
            else:
                p = probes.structural()
            self.rest(party, p)
            self.misp(party, p)
            self.taxii(party, deep=p.deep)
            self.push(party)
            self.notifications(party)
        return self.findings


@dataclass
class Probes:
    """The queries a partner makes (values, types, tags and times taken from the world)."""

    events: list[Event]
    values: list[str]
    types: list[str]
    tags: list[str]
    since: list[int]
    patterns: list[tuple[str, Callable[[str], bool]]]
    nothing: str = "zqffffffffff.nobody.example"
    deep: bool = True  # also the variants (include_deleted, HEAD, ids, TLP collections …)

    def structural(self) -> Probes:
        """Every event, no filter queries."""
        return replace(self, values=[], types=[], tags=[], since=[], patterns=[], deep=False)

    def light(self) -> Probes:
        """For a partner that receives nothing: one event, one value, one tag."""
        return replace(
            self,
            events=self.events[:1],
            values=self.values[:1],
            types=[],
            tags=self.tags[:1],
            since=[],
            patterns=[],
            deep=False,
        )


def probes_for(world: World, *, budget: int = 2, every_type: bool = False) -> Probes:
    """Queries over the world's values, types and tags, ``budget`` of each kind (each query
    costs every partner a request or more; coverage builds up over the worlds)."""
    rng = random.Random(world.size())
    values = list(dict.fromkeys(a.value for e in world.events for _, a in e.all_attributes()))
    rng.shuffle(values)
    values = values[:budget]
    types = sorted({a.type for e in world.events for _, a in e.all_attributes()})
    rng.shuffle(types)
    tags = sorted(
        {t.name for e in world.events for t in e.tags}
        | {t.name for e in world.events for _, a in e.all_attributes() for t in a.tags}
    )
    tags = [t for t in tags if tlp_rank_of(t) is None]
    rng.shuffle(tags)
    patterns = [
        (v[:12] + "%", lambda x, p=v[:12]: x.lower().startswith(p))
        for v in values
        if v.startswith("zq")
    ]
    return Probes(
        events=list(world.events),
        values=values,
        types=(types if every_type else types[: budget - 1]) + ["btc"],
        tags=tags[:budget] + [label_tag(AMBER)],
        since=sorted({e.timestamp for e in world.events})[-1:],
        patterns=patterns[:1],
    )

"""Recording and querying the lineage graph (reference §3.5).

Writers call `activity`, `artifact`, `derive` and `use` in the transaction of the work they
record (flush only). Queries walk derivation edges with a recursive CTE: backward from a
notification to the item versions it came from, forward from an item to everything derived
from it. `to_prov` turns a graph into W3C PROV-JSON.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, literal, select
from sqlalchemy.orm import Session

from hub.models import (
    EventVersion,
    LineageActivity,
    LineageArtifact,
    LineageDerivation,
    LineageUse,
    Partner,
)

_MAX_DEPTH = 20
_RANKED = ("clear", "green", "amber", "amber+strict", "red")


def activity(
    session: Session,
    *,
    kind: str,
    agent: str,
    plan: str,
    on_behalf_of: str | None = None,
    params: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> int:
    """Record an activity; ``at`` only when it happened earlier than now (recorded later)."""
    values: dict[str, Any] = {
        "kind": kind,
        "agent": agent,
        "plan": plan,
        "on_behalf_of": on_behalf_of,
        "params": params or {},
    }
    if at is not None:
        values["at"] = at
    return int(
        session.execute(
            insert(LineageActivity).values(**values).returning(LineageActivity.id)
        ).scalar_one()
    )


def find_artifact(session: Session, *, kind: str, external_id: str, version: int) -> int | None:
    return session.scalar(
        select(LineageArtifact.id).where(
            LineageArtifact.kind == kind,
            LineageArtifact.external_id == external_id,
            LineageArtifact.version == version,
        )
    )


def artifact(
    session: Session,
    *,
    kind: str,
    external_id: str,
    version: int,
    generated_by: int | None,
    source_uuid: str | None = None,
    tlp: str | None = None,
    content_sha256: str | None = None,
) -> int:
    """The artifact (kind, external id, version), created on first sight: never updated."""
    found = find_artifact(session, kind=kind, external_id=external_id, version=version)
    if found is not None:
        return found
    return int(
        session.execute(
            insert(LineageArtifact)
            .values(
                kind=kind,
                external_id=external_id,
                version=version,
                generated_by=generated_by,
                source_uuid=source_uuid,
                tlp=tlp,
                content_sha256=content_sha256,
            )
            .returning(LineageArtifact.id)
        ).scalar_one()
    )


def derive(session: Session, *, derived: int, sources: Iterable[int], rel: str, by: int) -> None:
    rows = [
        {"derived_id": derived, "source_id": s, "rel": rel, "activity_id": by}
        for s in sorted(set(sources))
    ]
    if rows:
        session.execute(insert(LineageDerivation), rows)


def use(session: Session, *, by: int, artifact_id: int, role: str) -> None:
    session.execute(insert(LineageUse).values(activity_id=by, artifact_id=artifact_id, role=role))


def event_version_artifact(session: Session, version: EventVersion, event_uuid: str) -> int:
    """The artifact of one stored event version. Ingest records it (``record_ingest``); a
    version stored before lineage was recorded at ingest gets it here, when first met."""
    found = find_artifact(session, kind="event", external_id=event_uuid, version=version.version)
    if found is not None:
        return found
    source = session.get(Partner, version.source_partner_id)
    return record_ingest(
        session,
        event_uuid=event_uuid,
        version=version.version,
        source_uuid=source.uuid if source is not None else None,
        actor=version.actor,
        channel=version.channel,
        tlp_rank=version.tlp_rank,
        content_sha256=version.content_hash,
    )


@dataclass(frozen=True, slots=True)
class Conversion:
    """The input was converted before it was stored: by which converter (name@version), from
    which bytes (their SHA-256 names the submission)."""

    converter: str
    submission_sha256: str


def record_ingest(
    session: Session,
    *,
    event_uuid: str,
    version: int,
    source_uuid: str | None,
    actor: str,
    channel: str,
    tlp_rank: int,
    content_sha256: str,
    conversion: Conversion | None = None,
) -> int:
    """One stored event version: an ``ingest`` activity (agent: the key or connection that
    submitted it, on behalf of the source; plan: the channel), the version's artifact, its
    ``revision_of`` edge to the previous version and, for converted input (STIX), a
    ``convert`` activity (plan: the converter version) deriving it from the submission.

    A few statements per version, none per attribute: ingest speed does not change."""
    ingest = activity(
        session,
        kind="ingest",
        agent=actor,
        plan=f"ingest:{channel}",
        on_behalf_of=source_uuid,
        params={"event": event_uuid, "version": version, "channel": channel},
    )
    art = artifact(
        session,
        kind="event",
        external_id=event_uuid,
        version=version,
        generated_by=ingest,
        source_uuid=source_uuid,
        tlp=_RANKED[tlp_rank],
        content_sha256=content_sha256,
    )
    previous = find_artifact(session, kind="event", external_id=event_uuid, version=version - 1)
    if previous is not None:
        derive(session, derived=art, sources=[previous], rel="revision_of", by=ingest)
    if conversion is not None:
        _record_conversion(session, conversion, art=art, actor=actor, source_uuid=source_uuid)
    return art


def _record_conversion(
    session: Session, conversion: Conversion, *, art: int, actor: str, source_uuid: str | None
) -> None:
    convert = activity(
        session,
        kind="convert",
        agent=actor,
        plan=conversion.converter,
        on_behalf_of=source_uuid,
        params={"submission_sha256": conversion.submission_sha256},
    )
    submission = artifact(
        session,
        kind="submission",
        external_id=conversion.submission_sha256,
        version=1,
        generated_by=None,
        source_uuid=source_uuid,
        content_sha256=conversion.submission_sha256,
    )
    use(session, by=convert, artifact_id=submission, role="input")
    derive(session, derived=art, sources=[submission], rel="derived_from", by=convert)


# --- queries --------------------------------------------------------------------------------


def _walk(session: Session, start: list[int], *, backward: bool) -> list[int]:
    """Artifact ids reachable from ``start`` along derivations (backward: towards sources)."""
    if not start:
        return []
    d = LineageDerivation
    seed = select(LineageArtifact.id.label("id"), literal(0).label("depth")).where(
        LineageArtifact.id.in_(start)
    )
    walk = seed.cte("walk", recursive=True)
    here, there = (d.derived_id, d.source_id) if backward else (d.source_id, d.derived_id)
    walk = walk.union(
        select(there.label("id"), (walk.c.depth + 1).label("depth"))
        .join(walk, here == walk.c.id)
        .where(walk.c.depth < _MAX_DEPTH)
    )
    return sorted(set(session.scalars(select(walk.c.id))))


def graph(session: Session, artifact_ids: list[int]) -> dict[str, Any]:
    """Artifacts, the activities that made or used them, and the edges between them."""
    arts = session.scalars(
        select(LineageArtifact)
        .where(LineageArtifact.id.in_(artifact_ids))
        .order_by(LineageArtifact.id)
    ).all()
    ids = {a.id for a in arts}
    derivations = session.scalars(
        select(LineageDerivation).where(
            LineageDerivation.derived_id.in_(ids), LineageDerivation.source_id.in_(ids)
        )
    ).all()
    uses = session.scalars(select(LineageUse).where(LineageUse.artifact_id.in_(ids))).all()
    activity_ids = {a.generated_by for a in arts if a.generated_by is not None}
    activity_ids |= {d.activity_id for d in derivations} | {u.activity_id for u in uses}
    acts = session.scalars(
        select(LineageActivity)
        .where(LineageActivity.id.in_(activity_ids))
        .order_by(LineageActivity.id)
    ).all()
    return {
        "artifacts": [
            {
                "id": f"artifact:{a.id}",
                "kind": a.kind,
                "external_id": a.external_id,
                "version": a.version,
                "source": a.source_uuid,
                "tlp": a.tlp,
                "content_sha256": a.content_sha256,
                "generated_by": f"activity:{a.generated_by}" if a.generated_by else None,
                "created_at": a.created_at.isoformat(),
            }
            for a in arts
        ],
        "activities": [
            {
                "id": f"activity:{a.id}",
                "kind": a.kind,
                "at": a.at.isoformat(),
                "agent": a.agent,
                "on_behalf_of": a.on_behalf_of,
                "plan": a.plan,
                "params": a.params,
            }
            for a in acts
        ],
        "derivations": [
            {
                "derived": f"artifact:{d.derived_id}",
                "source": f"artifact:{d.source_id}",
                "rel": d.rel,
                "activity": f"activity:{d.activity_id}",
            }
            for d in derivations
        ],
        "uses": [
            {
                "activity": f"activity:{u.activity_id}",
                "artifact": f"artifact:{u.artifact_id}",
                "role": u.role,
            }
            for u in uses
        ],
    }


def backward(session: Session, *, ticket: str) -> dict[str, Any]:
    """Where a notification came from: its versions back to the item versions and sources."""
    start = list(
        session.scalars(
            select(LineageArtifact.id).where(
                LineageArtifact.kind == "notification", LineageArtifact.external_id == ticket
            )
        )
    )
    return graph(session, _walk(session, start, backward=True))


def forward(session: Session, *, item_uuid: str) -> dict[str, Any]:
    """Everything derived from an item: notifications, their deliveries, feedback, retractions."""
    start = list(
        session.scalars(
            select(LineageArtifact.id).where(
                LineageArtifact.kind == "event", LineageArtifact.external_id == item_uuid
            )
        )
    )
    return graph(session, _walk(session, start, backward=False))


def derived_from(session: Session, *, kind: str, external_id: str) -> dict[str, Any]:
    """Backward from every version of any artifact (a knowledge product): what it came from."""
    start = list(
        session.scalars(
            select(LineageArtifact.id).where(
                LineageArtifact.kind == kind, LineageArtifact.external_id == external_id
            )
        )
    )
    return graph(session, _walk(session, start, backward=True))


# --- W3C PROV-JSON ---------------------------------------------------------------------------


def to_prov(g: dict[str, Any]) -> dict[str, Any]:
    """The graph as a PROV-JSON document (validated by the ``prov`` package in the tests)."""
    from prov.model import ProvDocument  # only exports need it

    doc = ProvDocument()
    doc.add_namespace("cwn", "https://cwn.nl/ns/lineage#")
    doc.add_namespace("org", "urn:uuid:")
    agents: set[str] = set()

    def agent(name: str) -> str:
        key = f"cwn:agent/{_safe(name)}"
        if key not in agents:
            doc.agent(key, {"cwn:name": name})
            agents.add(key)
        return key

    for a in g["activities"]:
        act = f"cwn:{_safe(a['id'])}"
        doc.activity(act, a["at"], None, {"cwn:kind": a["kind"], "cwn:plan": a["plan"]})
        plan = f"cwn:plan/{_safe(a['plan'])}"
        doc.entity(plan, {"prov:type": "prov:Plan", "cwn:ref": a["plan"]})
        doc.wasAssociatedWith(act, agent(a["agent"]), plan)
        if a["on_behalf_of"]:
            doc.actedOnBehalfOf(agent(a["agent"]), agent(f"org:{a['on_behalf_of']}"))
    for art in g["artifacts"]:
        ent = f"cwn:{_safe(art['id'])}"
        attrs = {
            "cwn:kind": art["kind"],
            "cwn:external_id": art["external_id"],
            "cwn:version": art["version"],
        }
        if art["tlp"]:
            attrs["cwn:tlp"] = art["tlp"]
        doc.entity(ent, attrs)
        if art["generated_by"]:
            doc.wasGeneratedBy(ent, f"cwn:{_safe(art['generated_by'])}")
        if art["source"]:
            doc.wasAttributedTo(ent, agent(f"org:{art['source']}"))
    for d in g["derivations"]:
        derived, source = f"cwn:{_safe(d['derived'])}", f"cwn:{_safe(d['source'])}"
        activity_id = f"cwn:{_safe(d['activity'])}"
        if d["rel"] == "revision_of":
            doc.wasRevisionOf(derived, source)
        elif d["rel"] == "invalidated_by":
            doc.wasInvalidatedBy(source, activity_id)
        else:
            doc.wasDerivedFrom(derived, source, activity_id)
    for u in g["uses"]:
        doc.used(f"cwn:{_safe(u['activity'])}", f"cwn:{_safe(u['artifact'])}")
    import json

    return json.loads(doc.serialize(format="json"))  # type: ignore[no-any-return]


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def redact(g: dict[str, Any], *, reveal_sources: set[str]) -> dict[str, Any]:
    """A recipient's view: sources it may not know are shown as "via hub", agents hidden."""
    out = {k: [dict(x) for x in v] for k, v in g.items()}
    for art in out["artifacts"]:
        if art["source"] and art["source"] not in reveal_sources:
            art["source"] = "via hub"
    for act in out["activities"]:
        act["agent"] = "hub"
        if act["on_behalf_of"] not in reveal_sources:
            act["on_behalf_of"] = None
        act["params"] = {}
    return out


def recipient_graph(g: dict[str, Any], *, ticket: str, caller_uuid: str) -> dict[str, Any]:
    """A recipient's part of a ticket's backward graph (before `redact`): the ticket's own
    artifacts and the event versions they were made from, and only the activities about this
    ticket (its decision, render and retractions) and the caller's own deliveries.

    Left out: other tickets' decisions on the same event versions (they would show which
    other organisations were notified, and when), ingest activities (the channel an item
    arrived by), earlier event versions and the events' content hashes.
    """
    acts: dict[str, dict[str, Any]] = {}
    for act in g["activities"]:
        if act["kind"] == "deliver":
            if act["on_behalf_of"] == caller_uuid:
                acts[act["id"]] = act
        elif (
            act["kind"] in ("decide", "render", "retract")
            and (act["params"] or {}).get("ticket") == ticket
        ):
            acts[act["id"]] = act
    own = {
        a["id"]
        for a in g["artifacts"]
        if a["kind"] == "notification" and a["external_id"] == ticket
    }
    derivations = [d for d in g["derivations"] if d["activity"] in acts and d["derived"] in own]
    keep = own | {d["source"] for d in derivations}
    uses = [u for u in g["uses"] if u["activity"] in acts and u["artifact"] in keep]
    artifacts = []
    for art in g["artifacts"]:
        if art["id"] not in keep:
            continue
        art = dict(art)
        if art["generated_by"] not in acts:
            art["generated_by"] = None
        if art["kind"] != "notification":
            art["content_sha256"] = None
        artifacts.append(art)
    used = {u["activity"] for u in uses} | {d["activity"] for d in derivations}
    used |= {a["generated_by"] for a in artifacts if a["generated_by"]}
    return {
        "artifacts": artifacts,
        "activities": [dict(a) for a in g["activities"] if a["id"] in used],
        "derivations": [dict(d) for d in derivations],
        "uses": [dict(u) for u in uses],
    }


def opaque(g: dict[str, Any], *, secret: str, scope: str) -> dict[str, Any]:
    """A recipient's graph (after `recipient_graph`) without the hub's counters: node ids
    become codes keyed by the hub secret and ``scope`` (the caller and the ticket), and an
    event's versions are numbered 1, 2, … among those in this graph.

    The stored ids and version numbers are hub-wide: ``artifact:1041`` then ``artifact:1187``
    tell how much lineage others made in between, and an event's version moves with edits
    the caller never received (DESIGN §3). Scoped codes are stable for the caller's view of
    one ticket yet cannot be matched across tickets or callers.
    """
    key = hashlib.sha256(f"cwn-hub lineage ids v1\0{secret}".encode()).digest()

    def code(node: str | None) -> str | None:
        if node is None:
            return None
        kind, _, _ = node.partition(":")
        mac = hmac.new(key, f"{scope}\0{node}".encode(), hashlib.sha256).hexdigest()
        return f"{kind}:{mac[:24]}"

    seen: dict[str, set[int]] = {}
    for a in g["artifacts"]:
        if a["kind"] == "event":
            seen.setdefault(a["external_id"], set()).add(a["version"])
    ordinal = {(e, v): n for e, vs in seen.items() for n, v in enumerate(sorted(vs), start=1)}
    artifacts = []
    for art in g["artifacts"]:
        art = {**art, "id": code(art["id"]), "generated_by": code(art["generated_by"])}
        if art["kind"] == "event":
            art["version"] = ordinal[(art["external_id"], art["version"])]
        artifacts.append(art)
    return {
        "artifacts": artifacts,
        "activities": [{**a, "id": code(a["id"])} for a in g["activities"]],
        "derivations": [
            {**d, **{k: code(d[k]) for k in ("derived", "source", "activity")}}
            for d in g["derivations"]
        ],
        "uses": [{**u, **{k: code(u[k]) for k in ("activity", "artifact")}} for u in g["uses"]],
    }

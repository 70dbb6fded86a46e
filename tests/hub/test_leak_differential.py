"""The differential leak test (issue 13): every channel a partner has answers exactly what
DESIGN.md §3 releases to it, nothing more (safety) and nothing less (liveness).

Hypothesis builds worlds (partners of every tier, agreement and status; events with labels on
the event, objects and attributes, MISP distributions 0-5, sharing groups at every level,
proposals, sightings by several organisations, local tags, TLP:EX:CHR with producer tags,
reports), submits them through the REST API as their sources, runs the worker (notifications,
pushes to a recording fake MISP, STIX), harvests REST, ``/misp``, TAXII, push bodies and
notifications as each partner, and compares with the separate oracle in
tests/hub/leak_oracle.py. The hand-built scenarios below cover each §3 rule on their own, so
coverage does not depend on what hypothesis happens to draw.

Failures are collected over all worlds and reported once, grouped by channel and kind, each
with the smallest world that showed it (no shrinking: each world costs seconds).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import re
import uuid as uuid_mod
from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from hub.db import make_sessionmaker
from hub.main import create_app
from hub.runtime import Runtime
from hub.settings import Settings
from tests.hub.leak_harvest import (
    TAXII_MEDIA,
    Collector,
    FakeMisp,
    Hub,
    Inspector,
    build,
    probes_for,
)
from tests.hub.leak_oracle import (
    Attr,
    Event,
    Group,
    LiveSighting,
    Obj,
    Party,
    PayloadSighting,
    Proposal,
    Reach,
    Report,
    Tag,
    World,
    find_tokens,
    payload,
)

NAMES = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf")
LABEL_CHOICES = (None, "clear", "white", "green", "amber", "amber+strict", "red")
VALUE_TYPES = ("ip-dst", "ip-src", "domain", "hostname", "url", "sha256", "email-src", "text")
CATEGORY = {
    "sha256": "Payload delivery",
    "email-src": "Payload delivery",
    "filename": "Payload delivery",
    "text": "Other",
}


@pytest.fixture
def leak_hub(engine: Engine, settings: Settings) -> Iterator[Hub]:
    """The app on the test database, notifications without batching delay, a fake MISP."""
    s = settings.model_copy(
        update={"notify_interval_seconds": 0, "connections_allow_loopback": True}
    )
    app = create_app(s, engine=engine)
    fake = FakeMisp()
    try:
        with TestClient(app) as client:
            yield Hub(
                client=client,
                maker=make_sessionmaker(engine),
                engine=engine,
                context=Runtime(settings=s, policy=app.state.runtime.policy),
                fake=fake,
            )
    finally:
        fake.close()


class Maker:
    """Builds world elements with unique tokens and uuids (deterministic per seed)."""

    def __init__(self, seed: int = 0, partners: int = 6) -> None:
        self.rng = random.Random(seed)
        self.count = itertools.count(1)
        self.partners = partners  # prefix/domain number ``partners`` belongs to nobody

    def token(self) -> str:
        return f"zq{next(self.count) * 7919 % 16**10:010x}"

    def uuid(self) -> str:
        return str(uuid_mod.UUID(int=self.rng.getrandbits(128), version=4))

    def input_id(self) -> str:
        return "98" + f"{self.rng.randrange(10**10):010d}"

    def party(self, i: int, **fields: Any) -> Party:
        return Party(key=f"p{i}", name=f"Partner {NAMES[i]}", uuid=self.uuid(), **fields)

    @staticmethod
    def reach(i: int, *sectors: str) -> Reach:
        return Reach((f"10.{100 + i}.0.0/16",), (f"p{i}.example.nl",), tuple(sectors))

    def value(self, type_: str, where: int) -> str:
        n = next(self.count)
        t = self.token()
        host = f"{t}.p{where}.example.nl"
        return {
            "ip-dst": f"10.{100 + where}.{100 + n // 100 % 100}.{100 + n % 100}",
            "ip-src": f"10.{100 + where}.{100 + n // 100 % 100}.{100 + n % 100}",
            "domain": host,
            "hostname": host,
            "url": f"http://{host}/x",
            "sha256": hashlib.sha256(t.encode()).hexdigest(),
            "email-src": f"{t}@p{where}.example.nl",
            "text": f"note {t}",
            "filename": f"{t}.exe",
        }[type_]

    def attr(
        self,
        type_: str = "ip-dst",
        label: str | None = None,
        *,
        where: int | None = None,
        value: str | None = None,
        local: bool = False,
        tag: bool = False,
        **fields: Any,
    ) -> Attr:
        tags = [Tag(f"tlp:{label}")] if label else []
        if tag:
            tags.append(Tag(f"cwn-test:{self.token()}"))
        if local:
            tags.append(Tag(f"cwn-local:{self.token()}", local=True))
        return Attr(
            uuid=self.uuid(),
            type=type_,
            value=value or self.value(type_, self.partners if where is None else where),
            category=CATEGORY.get(type_, "Network activity"),
            to_ids=type_ != "text",
            tags=tuple(tags) + tuple(fields.pop("tags", ())),
            **fields,
        )

    def group(self, *members: str, outsider: bool = False, input_id: bool = False) -> Group:
        return Group(
            uuid=self.uuid(),
            name=f"SG {self.token()}",
            members=tuple(members),
            outsiders=((self.uuid(), f"Org {self.token()}"),) if outsider else (),
            input_id=self.input_id() if input_id else "",
        )

    def obj(self, *attrs: Attr, label: str | None = None, **fields: Any) -> Obj:
        return Obj(
            uuid=self.uuid(),
            name="domain-ip",
            template_uuid="43b3b146-77eb-4931-b4cc-b66c60f28734",
            meta_category="network",
            attributes=attrs,
            tags=(Tag(f"tlp:{label}"),) if label else (),
            **fields,
        )

    def domain_ip(
        self, where: int, labels: tuple[str | None, str | None] = (None, None), **fields: Any
    ) -> Obj:
        return self.obj(
            self.attr("domain", labels[0], where=where, relation="domain"),
            self.attr("ip-dst", labels[1], where=where, relation="ip"),
            **fields,
        )

    def report(self, **fields: Any) -> Report:
        return Report(self.uuid(), f"Report {self.token()}", f"content {self.token()}", **fields)

    def proposal(self) -> Proposal:
        return Proposal(
            self.uuid(),
            "domain",
            f"{self.token()}.proposed.example",
            f"{self.token()}@proposer.example",
        )

    def event(
        self,
        source: str,
        label: str | None = None,
        *,
        extra_tags: tuple[Tag, ...] = (),
        chr: bool = False,
        stamp: int = 0,
        **fields: Any,
    ) -> Event:
        tags = [Tag(f"tlp:{label}")] if label else []
        if chr:
            tags += [Tag("tlp:ex:chr"), Tag(f'misp-galaxy:producer="{self.token()}"')]
        fields.setdefault("distribution", 1)  # None: not given (the distribution scenario)
        return Event(
            uuid=self.uuid(),
            info=f"Event {self.token()}",
            source=source,
            timestamp=1_700_000_000 + 1000 * (stamp or next(self.count)),
            tags=tuple(tags) + extra_tags,
            **fields,
        )


# --- hypothesis: worlds --------------------------------------------------------------------


@st.composite
def worlds(draw: st.DrawFn) -> World:
    n = draw(st.integers(3, 4))
    m = Maker(draw(st.integers(0, 2**32 - 1)), partners=n)
    parties: dict[str, Party] = {}
    for i in range(n):
        source_capable = i < 2
        role = draw(st.sampled_from(["none", "targets", "constituency"]))
        sectors = tuple(
            draw(st.lists(st.sampled_from(["health", "energy"]), unique=True, max_size=2))
        )
        parties[f"p{i}"] = m.party(
            i,
            # Sources are core partners here: whether a lower tier's ceiling narrows what a
            # source gets back of its own is a question of its own (see the scenarios).
            tier="core"
            if source_capable
            else draw(st.sampled_from(["core", "ecosystem", "connection"])),
            tlp=True if source_capable else draw(st.booleans()),
            status="active"
            if source_capable
            else draw(st.sampled_from(["active", "active", "active", "suspended", "prospect"])),
            sectors=sectors,
            targets=m.reach(i) if role == "targets" else None,
            constituency=m.reach(i, *sectors) if role == "constituency" else None,
            push=draw(st.booleans()),
        )
    parties["hub"] = Party(key="hub", name="NCSC-NL", hub=True)
    keys = [k for k in parties if k != "hub"]
    sources = ["p0", "p1"]

    def group() -> Group:
        return m.group(
            *draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys))),
            outsider=draw(st.booleans()),
            input_id=draw(st.booleans()),
        )

    def addressing(*, event: bool = False) -> dict[str, Any]:
        choices = [None, 0, 1, 2, 3, 4] if event else [None, None, 5, 0, 1, 3, 4]
        dist = draw(st.sampled_from(choices))
        return {"distribution": dist, "group": group() if dist == 4 else None}

    def tags(level: str) -> tuple[Tag, ...]:
        out = []
        if draw(st.integers(0, 3)) == 0:
            out.append(Tag(f"cwn-test:{m.token()}"))
        if draw(st.integers(0, 3)) == 0:
            out.append(Tag(f"cwn-local:{m.token()}", local=True))
        if level == "event" and draw(st.integers(0, 4)) == 0:
            out.append(Tag(f'misp-galaxy:producer="{m.token()}"'))
        return tuple(out)

    def label() -> str | None:
        return draw(st.sampled_from(LABEL_CHOICES))

    values: list[tuple[str, str]] = []

    def attribute(type_: str | None = None, relation: str = "") -> Attr:
        if values and type_ is None and draw(st.integers(0, 6)) == 0:
            type_, value = draw(st.sampled_from(values))  # the same value once more
        else:
            type_ = type_ or draw(st.sampled_from(VALUE_TYPES))
            value = m.value(type_, draw(st.integers(0, n)))
        values.append((type_, value))
        sightings = ()
        if draw(st.integers(0, 6)) == 0:
            claimed = draw(st.sampled_from(["", *keys]))
            who = parties[claimed] if claimed else None
            sightings = (
                PayloadSighting(
                    uuid=m.uuid(),
                    source=m.token(),
                    org_uuid=who.uuid if who else m.uuid(),
                    org_name=who.name if who else f"Org {m.token()}",
                    claimed=claimed,
                ),
            )
        lab = label()
        return Attr(
            uuid=m.uuid(),
            type=type_,
            value=value,
            category=CATEGORY.get(type_, "Network activity"),
            to_ids=type_ != "text",
            tags=((Tag(f"tlp:{lab}"),) if lab else ()) + tags("attribute"),
            comment=m.token() if draw(st.booleans()) else "",
            relation=relation,
            sightings=sightings,
            proposals=(m.proposal(),) if draw(st.integers(0, 9)) == 0 else (),
            input_id=m.input_id() if draw(st.integers(0, 4)) == 0 else "",
            **addressing(),
        )

    events = []
    for stamp in range(draw(st.integers(1, 4))):
        source = draw(st.sampled_from(sources + (["hub"] if draw(st.integers(0, 7)) == 0 else [])))
        ev_labels = draw(st.lists(st.sampled_from(LABEL_CHOICES[1:]), max_size=2))
        ev_tags = [Tag(f"tlp:{x}") for x in ev_labels] + list(tags("event"))
        chr_ = draw(st.integers(0, 3)) == 0
        if chr_:
            ev_tags += [Tag("tlp:ex:chr"), Tag(f'misp-galaxy:producer="{m.token()}"')]
        if draw(st.integers(0, 2)) == 0:
            ev_tags.append(Tag(f'cwn:sector="{draw(st.sampled_from(["health", "energy"]))}"'))
        attrs = tuple(attribute() for _ in range(draw(st.integers(0, 4))))
        objects = tuple(
            Obj(
                uuid=m.uuid(),
                name="domain-ip",
                template_uuid="43b3b146-77eb-4931-b4cc-b66c60f28734",
                meta_category="network",
                attributes=(attribute("domain", "domain"), attribute("ip-dst", "ip")),
                tags=(Tag(f"tlp:{lab}"),) if (lab := label()) and draw(st.booleans()) else (),
                input_id=m.input_id() if draw(st.booleans()) else "",
                **addressing(),
            )
            for _ in range(draw(st.integers(0, 2)))
        )
        reports = tuple(m.report(**addressing()) for _ in range(draw(st.integers(0, 1))))
        if not (attrs or objects or reports):
            attrs = (attribute(),)
        claimed = (m.uuid(), f"Org {m.token()}") if draw(st.integers(0, 5)) == 0 else None
        events.append(
            Event(
                uuid=m.uuid(),
                info=f"Event {m.token()}",
                source=source,
                timestamp=1_700_000_000 + 1000 * stamp,
                tags=tuple(ev_tags),
                attributes=attrs,
                objects=objects,
                reports=reports,
                proposals=(m.proposal(),) if draw(st.integers(0, 4)) == 0 else (),
                creator_email=f"{m.token()}@creator.example"
                if draw(st.integers(0, 2)) == 0
                else "",
                claimed_orgc=claimed,
                # a MISP push names no other creator (the hub refuses a relay)
                via_misp=source != "hub" and claimed is None and draw(st.integers(0, 2)) == 0,
                published=draw(st.integers(0, 9)) > 0,
                input_ids=(m.input_id(), m.input_id(), m.input_id())
                if draw(st.integers(0, 3)) == 0
                else None,
                **addressing(event=True),
            )
        )
    world = World(parties, events)
    every = [(e.uuid, a.uuid) for e in events for _, a in e.all_attributes()]
    for k in keys:
        if parties[k].status != "prospect" and draw(st.integers(0, 2)) == 0:
            ev, at = draw(st.sampled_from(every))
            world.sightings.append(LiveSighting(k, ev, at, m.token()))
    return world


# --- running a world -------------------------------------------------------------------------


def check(hub: Hub, world: World, collector: Collector, *, label: str = "") -> list[Any]:
    build(hub, world)
    findings = Inspector(hub, world).run(probes_for(world))
    collector.add(world, findings, label=label)
    return findings


def test_every_channel_releases_exactly_what_the_rules_allow(leak_hub: Hub) -> None:
    collector = Collector()

    @settings(
        max_examples=int(os.environ.get("HUB_LEAK_EXAMPLES", "12")),
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # findings are collected, not raised
        suppress_health_check=list(HealthCheck),
    )
    @given(worlds())
    def run(world: World) -> None:
        check(leak_hub, world, collector)

    run()
    assert not collector.kinds, collector.report()


# --- hand-built worlds: one §3 rule each ------------------------------------------------------


def _people(m: Maker, *specs: dict[str, Any]) -> dict[str, Party]:
    """p0 is the source (core, agreed, active); the others as given."""
    parties = {
        "p0": m.party(0, sectors=("health",)),
        "hub": Party(key="hub", name="NCSC-NL", hub=True),
    }
    for i, spec in enumerate(specs, start=1):
        parties[f"p{i}"] = m.party(i, **spec)
    return parties


def labels_world() -> World:
    """Labels: WHITE = CLEAR; unlabelled = AMBER+STRICT; an attribute never lowers what it
    inherits; the most restrictive of several tags wins."""
    m = Maker(1)
    people = _people(m, {"tier": "core"}, {"tier": "ecosystem"}, {"tier": "connection"})
    return World(
        people,
        [
            m.event("p0", None, attributes=(m.attr("ip-dst", "green"),)),  # AMBER+STRICT: hub only
            m.event("p0", "white", attributes=(m.attr("domain", "clear"), m.attr("ip-dst"))),
            m.event("p0", "amber", attributes=(m.attr("ip-src", "green"), m.attr("url", "clear"))),
            m.event(
                "p0", "green", extra_tags=(Tag("tlp:amber"),), attributes=(m.attr("hostname"),)
            ),
        ],
    )


def object_world() -> World:
    """ "A MISP object goes or stays whole: its label is the highest of its own and its
    attributes'", carried on each of its attributes."""
    m = Maker(2)
    people = _people(m, {"tier": "ecosystem"}, {"tier": "connection"})
    return World(
        people,
        [
            m.event(
                "p0",
                "green",
                attributes=(m.attr("ip-dst"),),
                objects=(
                    m.domain_ip(9, labels=("green", "amber")),
                    m.domain_ip(9, labels=(None, "clear")),
                ),
            )
        ],
    )


def addressing_world() -> World:
    """Sharing groups name their members (the source always, non-partners ignored); a child's
    own group narrows; distribution 0 is the hub alone; reports keep their own distribution."""
    m = Maker(3)
    people = _people(m, {}, {}, {})
    group = m.group("p1", "p2", outsider=True, input_id=True)  # the source is not listed
    return World(
        people,
        [
            m.event(
                "p0",
                "green",
                distribution=4,
                group=group,
                attributes=(
                    m.attr("ip-dst"),
                    m.attr(
                        "domain", distribution=4, group=m.group("p2", "p3")
                    ),  # p3: not in the event's
                    m.attr("hostname", distribution=0),
                    m.attr("url", distribution=1),
                ),
                reports=(m.report(), m.report(distribution=4, group=m.group("p1"))),
            ),
            m.event(
                "p0",
                "amber",
                distribution=1,
                attributes=(
                    m.attr("ip-src"),
                    m.attr("sha256", distribution=4, group=m.group("p3")),
                ),
                objects=(m.domain_ip(9, distribution=4, group=m.group("p1")),),
            ),
        ],
    )


def community_world() -> World:
    """The community: active partners with the TLP agreement; CLEAR to every active partner;
    suspended and prospect partners get nothing."""
    m = Maker(4)
    people = _people(
        m,
        {"tlp": False},
        {"status": "suspended"},
        {"status": "prospect"},
        {"tier": "connection"},
    )
    return World(
        people,
        [
            m.event("p0", "clear", attributes=(m.attr("ip-dst"), m.attr("domain", "green"))),
            m.event("p0", "green", distribution=3, attributes=(m.attr("url"),)),
            m.event(
                "p0",
                "clear",
                distribution=4,
                group=m.group("p1", "p2", "p3"),
                attributes=(m.attr("hostname"),),
            ),
        ],
    )


def strict_world() -> World:
    """AMBER+STRICT only to organisations a sharing group names, within the tier ceiling;
    addressing the community is not naming."""
    m = Maker(5)
    people = _people(m, {"tier": "core"}, {"tier": "ecosystem"}, {"tier": "core", "tlp": False})
    return World(
        people,
        [
            m.event(
                "p0",
                "amber+strict",
                distribution=4,
                group=m.group("p1", "p2", "p3"),
                attributes=(m.attr("ip-dst"),),
            ),
            m.event("p0", "amber+strict", distribution=3, attributes=(m.attr("domain"),)),
            m.event(
                "p0",
                "green",
                attributes=(
                    m.attr("url"),
                    m.attr("hostname", "amber+strict", distribution=4, group=m.group("p1")),
                ),
            ),
        ],
    )


def red_world() -> World:
    """RED: only to named organisations, only over REST and as a notification to the named
    organisation itself; never MISP sync, TAXII, push, STIX export or via a constituency."""
    m = Maker(6)
    people = _people(
        m,
        {"targets": Maker.reach(1), "push": True},
        {"constituency": Maker.reach(2, "health"), "push": True},
    )
    return World(
        people,
        [
            m.event(
                "p0",
                "red",
                distribution=4,
                group=m.group("p1", "p2"),
                attributes=(m.attr("ip-dst", where=1), m.attr("domain", where=2)),
            ),
            # RED to the community is the hub's alone: an object's own group naming p1 inside
            # it does not make the event (nor its notification) p1's
            m.event(
                "p0",
                "red",
                distribution=2,
                objects=(m.domain_ip(1, distribution=4, group=m.group("p1")),),
            ),
            m.event(
                "p0",
                "green",
                distribution=2,
                attributes=(
                    m.attr("ip-src", where=1),
                    m.attr("ip-dst", "red", where=2, distribution=4, group=m.group("p2")),
                ),
            ),
        ],
    )


def hub_only_world() -> World:
    """What a partner addressed to the hub alone is never redistributed: distribution 0, and
    AMBER+STRICT or RED without a sharing group naming others."""
    m = Maker(7)
    people = _people(m, {"targets": Maker.reach(1), "push": True}, {"constituency": Maker.reach(2)})
    return World(
        people,
        [
            m.event(
                "p0",
                "green",
                distribution=0,
                attributes=(m.attr("ip-dst", where=1), m.attr("ip-dst", where=2)),
            ),
            m.event("p0", "red", distribution=1, attributes=(m.attr("domain", where=1),)),
            m.event(
                "p0",
                "amber+strict",
                distribution=4,
                group=m.group(),
                attributes=(m.attr("domain", where=2),),
            ),
        ],
    )


def distribution_world() -> World:
    """MISP distribution as MISP does it: ``/misp`` serves it as held, a push downgrades as a
    pushing MISP does; a missing event distribution is the default (1), a missing attribute
    distribution inherits (5)."""
    m = Maker(8)
    people = _people(m, {"push": True}, {"tier": "ecosystem", "push": True})
    return World(
        people,
        [
            m.event(
                "p0",
                "green",
                distribution=2,
                attributes=(
                    m.attr("ip-dst", distribution=3),
                    m.attr("domain"),
                    m.attr("url", distribution=1),
                ),
                objects=(m.domain_ip(9, distribution=5),),
                reports=(m.report(distribution=2),),
            ),
            m.event(
                "p0", "green", distribution=None, attributes=(m.attr("hostname"),)
            ),  # default: 1
            m.event("p0", "green", distribution=3, attributes=(m.attr("ip-src", distribution=2),)),
        ],
    )


def what_never_leaves_world() -> World:
    """Proposals, local tags, the source's numeric ids never leave; a creator the body claims
    is not the creator; sightings are the submitting key's and go to others anonymised."""
    m = Maker(9)
    people = _people(m, {"push": True}, {"tier": "ecosystem"})
    a = m.attr(
        "ip-dst",
        local=True,
        tag=True,
        comment=m.token(),
        input_id=m.input_id(),
        proposals=(m.proposal(),),
        sightings=(
            PayloadSighting(m.uuid(), m.token(), m.uuid(), f"Org {m.token()}"),
            PayloadSighting(
                m.uuid(), m.token(), people["p2"].uuid, people["p2"].name, claimed="p2"
            ),
        ),
    )
    b = m.attr("domain")
    event = m.event(
        "p0",
        "green",
        distribution=3,
        extra_tags=(Tag(f"cwn-local:{m.token()}", local=True), Tag(f"cwn-test:{m.token()}")),
        attributes=(a, b),
        proposals=(m.proposal(),),
        creator_email=f"{m.token()}@creator.example",
        claimed_orgc=(m.uuid(), f"Org {m.token()}"),
        input_ids=(m.input_id(), m.input_id(), m.input_id()),
    )
    world = World(people, [event])
    world.sightings = [
        LiveSighting("p1", event.uuid, b.uuid, m.token()),
        LiveSighting("p2", event.uuid, b.uuid, m.token()),
        LiveSighting("p2", event.uuid, a.uuid, m.token()),
    ]
    return world


def chr_world() -> World:
    """TLP:EX:CHR: nothing that names or narrows down the creator leaves: no creator
    organisation, producer tags, e-mail, and no sector collection that would identify it."""
    m = Maker(10)
    people = _people(
        m,
        {"sectors": ("health",), "push": True, "constituency": Maker.reach(1, "health")},
        {"sectors": ("energy",)},
    )
    return World(
        people,
        [
            m.event(
                "p0",
                "green",
                chr=True,
                distribution=3,
                extra_tags=(Tag('cwn:sector="health"'),),
                attributes=(
                    m.attr("ip-dst", where=1),
                    m.attr("domain", tags=(Tag(f'misp-galaxy:producer="{m.token()}"'),)),
                ),
                creator_email=f"{m.token()}@creator.example",
            ),
            m.event("p0", "green", attributes=(m.attr("hostname"),)),  # not CHR: attributed
        ],
    )


def source_ceiling_world() -> World:
    """The source receives its own items back (under the strict reading, within its tier's
    ceiling; RED never over MISP sync or TAXII, not even to its source)."""
    m = Maker(11)
    people = {
        "p0": m.party(0, tier="ecosystem", push=True),
        "p1": m.party(1, tier="connection"),
        "p2": m.party(2),
        "hub": Party(key="hub", name="NCSC-NL", hub=True),
    }
    return World(
        people,
        [
            m.event(
                "p0",
                "amber+strict",
                distribution=4,
                group=m.group("p2"),
                attributes=(m.attr("ip-dst"),),
            ),
            m.event(
                "p1",
                "amber",
                attributes=(
                    m.attr("domain"),
                    m.attr("url", "red", distribution=4, group=m.group("p2")),
                ),
            ),
            m.event(
                "p2", "red", distribution=4, group=m.group("p0"), attributes=(m.attr("hostname"),)
            ),
        ],
    )


def hidden_values_world() -> World:
    """The answer to a query is the same whether hidden data matching it exists or not: the
    same value in a released and a withheld attribute, values only withheld ones have."""
    m = Maker(12)
    people = _people(m, {"tier": "connection"}, {"tier": "core"})
    shared = m.value("domain", 9)
    older = m.event(
        "p0", "green", stamp=1, attributes=(m.attr("domain", value=shared), m.attr("ip-dst"))
    )
    hidden = m.event(
        "p0",
        "amber",
        stamp=2,
        attributes=(
            m.attr("domain", value=shared),
            m.attr("domain", "red"),
            m.attr("ip-dst", "amber+strict"),
        ),
    )
    # withheld by addressing (an attribute's own sharing group), which SQL cannot see: the
    # same value, and a value only withheld attributes have (twice: a page of one and more)
    only_hidden = m.value("hostname", 9)
    addressed = m.event(
        "p0",
        "green",
        stamp=3,
        attributes=(
            m.attr("ip-dst"),
            m.attr("domain", value=shared, distribution=4, group=m.group("p2")),
            m.attr("hostname", value=only_hidden, distribution=4, group=m.group("p2")),
            m.attr("hostname", value=only_hidden, distribution=4, group=m.group("p2")),
        ),
    )
    newer = m.event(
        "p0", "green", stamp=4, attributes=(m.attr("domain", value=shared), m.attr("url", "amber"))
    )
    return World(people, [addressed, older, hidden, newer])  # withheld rows come first


SCENARIOS = {
    f.__name__.removesuffix("_world"): f
    for f in (
        labels_world,
        object_world,
        addressing_world,
        community_world,
        strict_world,
        red_world,
        hub_only_world,
        distribution_world,
        what_never_leaves_world,
        chr_world,
        source_ceiling_world,
        hidden_values_world,
    )
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(leak_hub: Hub, name: str) -> None:
    world = SCENARIOS[name]()
    collector = Collector()
    build(leak_hub, world)
    budget = 8 if name == "hidden_values" else 2  # there, every value is asked for
    findings = Inspector(leak_hub, world).run(probes_for(world, budget=budget, every_type=True))
    collector.add(world, findings, label=(SCENARIOS[name].__doc__ or "").strip())
    assert not findings, collector.report()


# --- what changes over time: edits, withdrawals, relabelling, uuids ---------------------------


def _submit(hub: Hub, world: World, event: Event) -> Any:
    key = hub.keys[event.source]
    return hub.client.post(
        "/api/v1/events", json=payload(world, event), headers={"Authorization": key}
    )


def _flat(node: Any, path: str = "") -> dict[str, Any]:
    if isinstance(node, str) and node[:1] in "[{":
        try:
            node = json.loads(node)
        except ValueError:
            pass
    if isinstance(node, dict):
        return {
            k: v for key, value in node.items() for k, v in _flat(value, f"{path}.{key}").items()
        }
    if isinstance(node, list | tuple):
        return {
            k: v for i, value in enumerate(node) for k, v in _flat(value, f"{path}[{i}]").items()
        }
    return {path: node}


def _differences(before: Any, after: Any) -> str:
    """The paths whose values differ, ``before → after``."""
    a, b = _flat(before), _flat(after)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return "; ".join(f"{k}: {a.get(k)!r} → {b.get(k)!r}" for k in keys[:8]) + (
        " …" if len(keys) > 8 else ""
    )


def _canonical(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except ValueError:
        return text


def _answers(hub: Hub, party: Party, event: Event, value: str) -> dict[str, Any]:
    """What ``party`` is told about ``event`` on every channel it may ask (bodies only)."""
    h = {"Authorization": hub.keys[party.key]}
    c = hub.client
    out: dict[str, Any] = {}
    for url in (
        f"/api/v1/events/{event.uuid}",
        f"/api/v1/events/{event.uuid}?format=stix",
        "/api/v1/events",
        f"/api/v1/events?since={event.timestamp}",
        f"/api/v1/attributes?value={quote(value)}",
        f"/misp/events/view/{event.uuid}",
    ):
        r = c.get(url, headers=h)
        out[url] = (r.status_code, _canonical(r.text))
    for path, body in (
        ("/misp/events/index", {}),
        ("/misp/events/index", {"minimal": 1, "published": 1}),
        ("/misp/events/restSearch", {}),
        ("/misp/attributes/restSearch", {"value": value}),
    ):
        r = c.post(path, json=body, headers=h)
        out[f"{path} {body}"] = (r.status_code, _canonical(r.text))
    r = c.get("/taxii2/cwn/collections/all/objects/", headers={**h, "Accept": TAXII_MEDIA})
    objects = sorted(json.dumps(o, sort_keys=True) for o in r.json().get("objects") or [])
    out["taxii all"] = (r.status_code, objects)
    # when each object was added, and so what an ``added_after`` poller is shown again
    r = c.get("/taxii2/cwn/collections/all/manifest/", headers={**h, "Accept": TAXII_MEDIA})
    records = sorted(json.dumps(o, sort_keys=True) for o in r.json().get("objects") or [])
    out["taxii manifest"] = (r.status_code, records)
    return out


def test_an_edit_a_partner_may_not_see_changes_nothing_it_sees(leak_hub: Hub) -> None:
    """ "the answer to a query is the same whether hidden data matching it exists or not": an
    AMBER attribute added to a GREEN event moves neither the version, the timestamp, the
    count, the ``date_added`` of a TAXII object nor anything else a connection partner
    (GREEN at most) receives."""
    m = Maker(20)
    people = _people(m, {"tier": "connection"})
    event = m.event("p0", "green", stamp=1)
    seen = m.attr("ip-dst", timestamp=event.timestamp)
    event = replace(event, attributes=(seen,))
    world = World(people, [event])
    build(leak_hub, world)
    before = _answers(leak_hub, people["p1"], event, seen.value)
    hidden = m.attr("domain", "amber", timestamp=event.timestamp + 100)
    edited = replace(event, timestamp=event.timestamp + 100, attributes=(seen, hidden))
    assert _submit(leak_hub, world, edited).status_code == 201
    leak_hub.worker()
    after = _answers(leak_hub, people["p1"], event, seen.value)
    changed = [k for k in before if before[k] != after[k]]
    assert not changed, "\n".join(f"{k}: {_differences(before[k], after[k])}" for k in changed)
    world.events = [edited]
    findings = Inspector(leak_hub, world).run(probes_for(world))
    assert not findings, _report(world, findings)


def _report(world: World, findings: list[Any]) -> str:
    collector = Collector()
    collector.add(world, findings)
    return collector.report()


def _tokens_of(*texts: str) -> set[str]:
    return set().union(*(find_tokens(t) for t in texts))


def test_withdrawn_content_goes_only_to_those_who_received_it(leak_hub: Hub) -> None:
    """ "Withdrawn content (source deletion, operator delete, false-positive verdict) goes only
    to the recipients recorded as having received it ...; nobody else learns it existed."
    p1 fetched both events before the withdrawals; p2 could have but did not; p3 became active
    only afterwards."""
    m = Maker(21)
    people = _people(m, {}, {"sectors": ("health",)}, {"status": "prospect"})
    gone, kept = m.attr("ip-dst"), m.attr("domain")
    event = m.event("p0", "green", attributes=(gone, kept))
    deleted = m.event("p0", "green", attributes=(m.attr("url"),))
    world = World(people, [event, deleted])
    build(leak_hub, world)
    c, op = leak_hub.client, leak_hub.op
    for e in (event, deleted):
        assert (
            c.get(
                f"/api/v1/events/{e.uuid}", headers={"Authorization": leak_hub.keys["p1"]}
            ).status_code
            == 200
        )
    r = c.post(
        f"/api/v1/admin/events/{event.uuid}/attributes/{gone.uuid}/verdict",
        json={"verdict": "false_positive", "reason": "leak test"},
        headers=op,
    )
    assert r.status_code == 200, r.text
    r = c.delete(f"/api/v1/admin/events/{deleted.uuid}?reason=leak+test", headers=op)
    assert r.status_code == 200, r.text
    for step in ("onboarding", "active"):
        r = c.post(
            f"/api/v1/admin/partners/{people['p3'].uuid}/status",
            json={"status": step, "reason": "t"},
            headers=op,
        )
        assert r.status_code == 200, r.text
    leak_hub.worker()
    secret = _tokens_of(gone.uuid, gone.value) | _tokens_of(
        deleted.uuid, deleted.info, deleted.attributes[0].value
    )
    problems = []
    for key in ("p2", "p3"):
        h = {"Authorization": leak_hub.keys[key]}
        answers = {}
        for url in (
            f"/api/v1/events/{event.uuid}?include_deleted=true",
            f"/api/v1/events/{deleted.uuid}?include_deleted=true",
            f"/api/v1/events/{deleted.uuid}",
            f"/misp/events/view/{event.uuid}/deleted[]:0/deleted[]:1",
            f"/misp/events/view/{deleted.uuid}/deleted[]:0/deleted[]:1",
            "/api/v1/events?limit=500",
        ):
            answers[url] = c.get(url, headers=h).text
        for body in ({"deleted": 1}, {"deleted": [0, 1], "eventid": deleted.uuid}):
            answers[f"restSearch {body}"] = c.post(
                "/misp/events/restSearch", json=body, headers=h
            ).text
        answers["attributes restSearch deleted"] = c.post(
            "/misp/attributes/restSearch", json={"deleted": 1}, headers=h
        ).text
        coll = c.get("/taxii2/cwn/collections/", headers={**h, "Accept": TAXII_MEDIA}).json()
        for one in coll.get("collections") or []:
            answers[f"taxii {one['alias']}"] = c.get(
                f"/taxii2/cwn/collections/{one['id']}/objects/",
                headers={**h, "Accept": TAXII_MEDIA},
            ).text
        asked = {deleted.uuid, event.uuid}
        for where, text in answers.items():
            found = (find_tokens(text) & secret) - asked
            if found:
                problems.append(f"{key} {where}: {sorted(found)}")
        missing = c.get(f"/api/v1/events/{uuid_mod.uuid4()}", headers=h)
        for url in (
            f"/api/v1/events/{deleted.uuid}",
            f"/api/v1/events/{deleted.uuid}?include_deleted=true",
        ):
            r = c.get(url, headers=h)
            if (r.status_code, r.text.replace(deleted.uuid, "X")) != (missing.status_code, re.sub(UUID_RE, "X", missing.text)):  # fmt: skip
                problems.append(
                    f"{key} {url}: {r.status_code} {r.text[:200]} (a missing event: {missing.status_code} {missing.text[:200]})"
                )
    assert not problems, "\n".join(problems)


UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def test_a_notification_is_decided_again_on_every_fetch(leak_hub: Hub) -> None:
    """ "Every delivery, a re-fetch of something delivered before included, is decided against
    the item's current version": after the event is re-submitted as RED for the hub alone, the
    GREEN notifications made earlier answer nothing of it, directly or ``via=me``."""
    m = Maker(22)
    people = _people(m, {"targets": Maker.reach(1)}, {"constituency": Maker.reach(2)})
    direct, via = m.attr("ip-dst", where=1), m.attr("ip-dst", where=2)
    event = m.event("p0", "green", attributes=(direct, via))
    world = World(people, [event])
    build(leak_hub, world)
    c = leak_hub.client
    tickets = {}
    for key, query in (("p1", ""), ("p2", "?via=me")):
        h = {"Authorization": leak_hub.keys[key]}
        items = c.get(f"/api/v1/notifications{query}", headers=h).json()["items"]
        assert items, f"{key} got no notification{query} of a GREEN event to start with"
        tickets[key] = [i["ticket"] for i in items]
    relabelled = replace(event, timestamp=event.timestamp + 100, tags=(Tag("tlp:red"),))
    assert _submit(leak_hub, world, relabelled).status_code == 201
    leak_hub.worker()
    problems = []
    for key, query in (("p1", ""), ("p2", "?via=me")):
        h = {"Authorization": leak_hub.keys[key]}
        texts = {
            f"/api/v1/notifications{query}": c.get(f"/api/v1/notifications{query}", headers=h).text
        }
        for t in tickets[key]:
            for url in (f"/api/v1/notifications/{t}", f"/api/v1/notifications/{t}/lineage"):
                texts[url] = c.get(url, headers=h).text
        for url, text in texts.items():
            found = find_tokens(text) & _tokens_of(
                direct.value, via.value, direct.uuid, via.uuid, event.info
            )
            if found:
                problems.append(f"{key} {url}: {sorted(found)} in {text[:300]}")
    assert not problems, "\n".join(problems)


def test_a_uuid_the_caller_may_not_see_tells_nothing(leak_hub: Hub) -> None:
    """ "A uuid the caller may not see is answered as a missing one wherever the protocol
    allows; where it cannot be (a clash on submit), the refusal names nothing"."""
    m = Maker(23)
    people = _people(m, {})
    secret_attr = m.attr("ip-dst")
    hidden = m.event("p0", "amber+strict", distribution=0, attributes=(secret_attr,))
    world = World(people, [hidden])
    build(leak_hub, world)
    c = leak_hub.client
    h = {"Authorization": leak_hub.keys["p1"]}
    secret = _tokens_of(hidden.info, secret_attr.value) | {str(hidden.timestamp)}
    problems = []

    def named(what: str, r: Any, *allowed: str) -> None:
        text = r.text
        for a in allowed:
            text = text.replace(a, "")
        leaked = {s for s in secret if s in text} | ({hidden.uuid} & find_tokens(text))
        if leaked:
            problems.append(f"{what}: {r.status_code} names {sorted(leaked)}: {r.text[:300]}")

    ghost = str(uuid_mod.uuid4())
    # REST submit of the hidden uuid, older and newer than the hidden version: a clash
    for stamp in (hidden.timestamp - 50, hidden.timestamp + 50):
        mine = m.event("p1", "green", attributes=(m.attr("domain"),))
        body = payload(world, replace(mine, uuid=hidden.uuid, timestamp=stamp))
        r = c.post("/api/v1/events", json=body, headers=h)
        if r.status_code in (200, 201):
            problems.append(
                f"REST submit of a hidden uuid (timestamp {stamp}) answered {r.status_code}: {r.text[:300]}"
            )
        named(f"REST submit of a hidden uuid (timestamp {stamp})", r, hidden.uuid)
    # an attribute uuid that clashes with a hidden one: refused without naming the other event
    mine = m.event("p1", "green", attributes=(replace(m.attr("domain"), uuid=secret_attr.uuid),))
    r = c.post("/api/v1/events", json=payload(world, mine), headers=h)
    named("REST submit with a hidden attribute's uuid", r, mine.uuid, secret_attr.uuid)
    # /misp: edit of a hidden uuid answers as the edit of a missing one
    mine = m.event("p1", "green", attributes=(m.attr("domain"),))
    answers = []
    for target in (hidden.uuid, ghost):
        doc = payload(world, replace(mine, uuid=target))
        doc["Event"]["Orgc"] = {"uuid": people["p1"].uuid, "name": people["p1"].name}
        r = c.post(f"/misp/events/edit/{target}", json=doc, headers=h)
        answers.append((r.status_code, r.text.replace(target, "X")))
        named(f"/misp edit of {target}", r, target)
    if answers[0] != answers[1]:
        problems.append(
            f"/misp/events/edit: a hidden uuid {answers[0]} vs a missing one {answers[1]}"
        )
    # filterEventIdsForPush: the hidden uuid is wanted exactly as a missing one is
    offer = [
        {"Event": {"uuid": u, "timestamp": str(hidden.timestamp + 10)}}
        for u in (hidden.uuid, ghost)
    ]
    wanted = c.post("/misp/events/filterEventIdsForPush", json=offer, headers=h).json()
    if (hidden.uuid in wanted) != (ghost in wanted):
        problems.append(f"filterEventIdsForPush tells the hidden uuid apart: {wanted}")
    # view and HEAD
    for method in ("GET", "HEAD"):
        a = c.request(method, f"/misp/events/view/{hidden.uuid}", headers=h)
        b = c.request(method, f"/misp/events/view/{ghost}", headers=h)
        if (a.status_code, a.text.replace(hidden.uuid, "X")) != (
            b.status_code,
            b.text.replace(ghost, "X"),
        ):
            problems.append(
                f"{method} /misp/events/view: hidden {a.status_code} vs missing {b.status_code}"
            )
    assert not problems, "\n".join(problems)

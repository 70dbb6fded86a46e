"""A small, separate model of DESIGN.md §3 ("TLP rules the hub enforces", including "What leaves
the hub"), for the differential leak test (tests/hub/test_leak_differential.py).

Written from the design text alone: it imports nothing from ``tlp`` or the hub. It describes a
world (partners, events as their sources submit them, sightings added later) and answers, for
one partner and one channel, exactly which elements that partner may receive ("the release").
Every secret the test puts into the world is a *token* that the harvest can find again in any
response; each token has owners (the elements it belongs to), and a token may appear in a
partner's response only when one of its owners is released to that partner on that channel.

Where §3 leaves room, the oracle takes the strict reading (``Reading``, each choice with the
text it reads); the lenient reading is computed too, so that every finding can say whether it
is a leak under any reading or only under the strict one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# --- labels ---------------------------------------------------------------------------------

LABELS = ("clear", "green", "amber", "amber+strict", "red")
RANK = {name: i for i, name in enumerate(LABELS)} | {"white": 0}  # WHITE = CLEAR
CLEAR, GREEN, AMBER, AMBER_STRICT, RED = range(5)
#: "default tier ceilings core RED, ecosystem AMBER, connection GREEN"
CEILING = {"core": RED, "ecosystem": AMBER, "connection": GREEN}
#: "Unlabelled input gets a configurable default (AMBER+STRICT)"
DEFAULT_RANK = AMBER_STRICT
#: "A missing event distribution on submit is the hub's default distribution (1)"
DEFAULT_EVENT_DISTRIBUTION = 1
#: "a missing attribute distribution inherits (5)"
INHERIT = 5
PRODUCER_PREFIX = "misp-galaxy:producer="
CHR_TAG = "tlp:ex:chr"


@dataclass(frozen=True)
class Reading:
    """Where §3 leaves room, which way the oracle reads it. ``STRICT`` is the test's reading (the
    one the hub must meet); ``LENIENT`` is the other reasonable one, used only to tell, for each
    finding, whether it follows from a strict choice (then the lead decides) or from any
    reading of §3 (a leak whatever the reading)."""

    #: "Per-partner limits only narrow: default tier ceilings ... applied whether or not the
    #: partner is named" narrows "The source organisation always receives its own items back"
    #: too: an ecosystem or connection partner gets none of its own items above its ceiling.
    # Decided (lead): "always" wins: the source gets its own items back whatever its tier
    # (tlp.decide checks the source before the ceiling). Strict reading off.
    ceiling_binds_source: bool = False
    #: "Addressing the community is not naming": a child whose own distribution is 1-3 inside a
    #: sharing-group event stays within the group but is not "named" any more, so it cannot be
    #: AMBER+STRICT or RED (lenient: the event's group still names its members).
    # Decided (lead): a child inside a sharing-group event stays addressed to the group's
    # members (its community addressing narrows to the group), so they are still named.
    community_child_unnames: bool = False
    #: "What leaves the hub" lists "STIX export" apart from REST, so RED ("only over the REST
    #: API") does not go out in ``?format=stix``.
    red_not_in_stix: bool = True
    #: "when the hub pushes ... it downgrades as a pushing MISP does": like MISP, no event of
    #: distribution 0 or 1 is pushed, and elements whose own distribution is 0 or 1 are removed
    #: (misp-sync.md §2.3, §4.2). Lenient: push releases what ``/misp`` releases.
    push_like_misp: bool = True
    #: ``event_creator_email`` as the body gives it goes back to the source only (for CHR §3
    #: forbids it to others anyway; otherwise it is an unchecked, personal field).
    creator_email_own_only: bool = True
    #: "sector collections that would identify it": TLP:EX:CHR events stay out of TAXII sector
    #: collections altogether (except for their source).
    chr_out_of_sectors: bool = True
    #: "A MISP object goes or stays whole": an object goes only if every attribute in it may go
    #: under its own addressing (lenient: the object goes with the attributes that may).
    object_whole_addressing: bool = True
    #: The source's "own items back" is for the source itself; notifying its constituents of
    #: its own items is redistribution, decided as for anyone (lenient: its own rule applies).
    via_not_own: bool = True


STRICT = Reading()
LENIENT = Reading(*(False,) * 8)


class Channel(StrEnum):
    REST = "rest"  # /api/v1 list, view, attribute search
    STIX = "stix-export"  # /api/v1/events/{uuid}?format=stix
    MISP = "misp"  # /misp (a partner's MISP pulling, PyMISP)
    TAXII = "taxii"
    PUSH = "push"  # the hub pushing to the partner's MISP
    NOTIFY = "notify"  # a notification to the (directly registered) organisation itself
    NOTIFY_VIA = "notify-via"  # through a partner to its constituent (``?via=me``)


#: "RED: ... only over the REST API and as a notification to the named organisation itself;
#: never in MISP sync, TAXII, feeds, or through a partner to its constituency."
#: (``?format=stix``: see ``Reading.red_not_in_stix``.)
RED_CHANNELS = frozenset({Channel.REST, Channel.NOTIFY})


def tlp_rank_of(name: str) -> int | None:
    """The rank of a TLP colour tag (``tlp:amber``, ``tlp:white`` …), None for any other tag."""
    low = name.strip().lower()
    if not low.startswith("tlp:"):
        return None
    return RANK.get(low[4:])


def label_tag(rank: int) -> str:
    return f"tlp:{LABELS[rank]}"


# --- the world ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """Network prefixes, domains and sectors (a partner's constituency or registered targets)."""

    prefixes: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()

    def matches(self, value: str, type_: str) -> bool:
        """Whether ``value`` (of MISP type ``type_``) concerns this reach."""
        host = value
        if type_ in ("ip-dst", "ip-src"):
            try:
                address = ipaddress.ip_address(value)
            except ValueError:
                return False
            return any(address in ipaddress.ip_network(p) for p in self.prefixes)
        if type_ == "url":
            host = value.split("://", 1)[-1].split("/", 1)[0]
        elif type_ in ("email-src", "email-dst"):
            host = value.rpartition("@")[2]
        elif type_ not in ("domain", "hostname"):
            return False
        host = host.lower().rstrip(".")
        return any(host == d or host.endswith("." + d) for d in self.domains)

    def matches_for_sure(self, value: str, type_: str) -> bool:
        """Matches the hub must find (liveness): IP addresses and domain names only."""
        return type_ in ("ip-dst", "ip-src", "domain", "hostname") and self.matches(value, type_)


@dataclass(frozen=True)
class Party:
    """A partner of the hub (or the hub's own organisation, ``hub=True``)."""

    key: str  # short name in this world: p0, p1 … (or "hub")
    name: str
    tier: str = "core"
    tlp: bool = True
    status: str = "active"
    sectors: tuple[str, ...] = ()
    targets: Reach | None = None  # registered as direct notification targets
    constituency: Reach | None = None  # notified through this partner
    push: bool = False  # has a misp-push connection to its (fake) MISP
    uuid: str = ""
    hub: bool = False


@dataclass(frozen=True)
class Group:
    """A MISP sharing group: the organisations it names (partners or not)."""

    uuid: str
    name: str
    members: tuple[str, ...]  # partner keys named in it (the source may be left out)
    outsiders: tuple[tuple[str, str], ...] = ()  # (uuid, name) of organisations not partners
    input_id: str = ""


@dataclass(frozen=True)
class Tag:
    name: str
    local: bool = False


@dataclass(frozen=True)
class PayloadSighting:
    """A sighting inside the submitted event, "by" an organisation the body names."""

    uuid: str
    source: str
    org_uuid: str
    org_name: str
    claimed: str = ""  # partner key when the body names a partner, "" for an outsider


@dataclass(frozen=True)
class Proposal:
    uuid: str
    type: str
    value: str
    email: str


@dataclass(frozen=True)
class Attr:
    uuid: str
    type: str
    value: str
    category: str = "Network activity"
    to_ids: bool = True
    tags: tuple[Tag, ...] = ()
    distribution: int | None = None  # None: not given (inherits)
    group: Group | None = None
    comment: str = ""
    relation: str = ""
    sightings: tuple[PayloadSighting, ...] = ()
    proposals: tuple[Proposal, ...] = ()
    input_id: str = ""
    timestamp: int | None = None  # None: the event's


@dataclass(frozen=True)
class Obj:
    uuid: str
    name: str
    template_uuid: str
    meta_category: str
    attributes: tuple[Attr, ...]
    tags: tuple[Tag, ...] = ()
    distribution: int | None = None
    group: Group | None = None
    input_id: str = ""


@dataclass(frozen=True)
class Report:
    uuid: str
    name: str
    content: str
    distribution: int | None = None
    group: Group | None = None


@dataclass(frozen=True)
class Event:
    uuid: str
    info: str
    source: str  # party key (the submitter: a partner, or "hub" for an operator submission)
    timestamp: int
    tags: tuple[Tag, ...] = ()
    distribution: int | None = None
    group: Group | None = None
    attributes: tuple[Attr, ...] = ()
    objects: tuple[Obj, ...] = ()
    reports: tuple[Report, ...] = ()
    proposals: tuple[Proposal, ...] = ()
    creator_email: str = ""
    claimed_orgc: tuple[str, str] | None = None  # (uuid, name) the body claims as creator
    published: bool = True
    input_ids: tuple[str, str, str] | None = None  # (event id, org_id, orgc_id) of the source
    via_misp: bool = False  # submitted as the source's MISP pushes (``/misp/events/add``)

    @property
    def chr(self) -> bool:
        return any(t.name.lower() == CHR_TAG for t in self.tags if not t.local)

    def all_attributes(self) -> Iterator[tuple[Obj | None, Attr]]:
        for a in self.attributes:
            yield None, a
        for o in self.objects:
            for a in o.attributes:
                yield o, a


@dataclass(frozen=True)
class LiveSighting:
    """A sighting a partner added through ``/misp/sightings/add`` (``accepted``: the hub took it)."""

    by: str  # partner key
    event: str
    attribute: str
    source: str  # token
    accepted: bool = False


@dataclass
class World:
    parties: dict[str, Party]
    events: list[Event]
    sightings: list[LiveSighting] = field(default_factory=list)

    def party(self, key: str) -> Party:
        return self.parties[key]

    def event(self, uuid: str) -> Event:
        return next(e for e in self.events if e.uuid == uuid)

    @property
    def partners(self) -> list[Party]:
        return [p for p in self.parties.values() if not p.hub]

    def size(self) -> int:
        return len(self.parties) + sum(
            1 + len(list(e.all_attributes())) + len(e.objects) + len(e.reports) for e in self.events
        )


# --- addressing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Addressing:
    """Whom the source sent an element to.

    ``hub``: addressed to the hub alone (distribution 0 somewhere on the chain).
    ``members``: organisation uuids every sharing group on the chain names (None: no group,
    i.e. the community). ``named``: the nearest explicit addressing on the chain (the element's
    own, else its parent's …) is a sharing group.
    """

    hub: bool
    members: frozenset[str] | None
    named: bool


def _group_members(world: World, group: Group, source: Party) -> frozenset[str]:
    """ "the source is always a member; members that are not partners are ignored" (they never
    receive anyway: only partners are harvested)."""
    named = {world.party(k).uuid for k in group.members} | {u for u, _ in group.outsiders}
    return frozenset(named | {source.uuid})


def event_addressing(world: World, event: Event) -> Addressing:
    source = world.party(event.source)
    dist = DEFAULT_EVENT_DISTRIBUTION if event.distribution is None else event.distribution
    if dist == 0:
        return Addressing(True, None, False)
    if dist == 4:
        assert event.group is not None
        return Addressing(False, _group_members(world, event.group, source), True)
    return Addressing(False, None, False)  # 1-3: the community


def child_addressing(
    world: World,
    parent: Addressing,
    distribution: int | None,
    group: Group | None,
    source: Party,
    reading: Reading = STRICT,
) -> Addressing:
    """ "An attribute or object with its own sharing group goes only to members of that group
    who may also see the event": a child never widens its parent."""
    if distribution is None or distribution == INHERIT:
        return parent
    if distribution == 0:
        return Addressing(True, parent.members, False)
    if distribution == 4:
        assert group is not None
        own = _group_members(world, group, source)
        members = own if parent.members is None else parent.members & own
        return Addressing(parent.hub, members, True)
    # 1-3, the community: within the parent's group, if any (see Reading.community_child_unnames)
    return Addressing(
        parent.hub, parent.members, parent.named and not reading.community_child_unnames
    )


# --- who may receive ------------------------------------------------------------------------


def may_receive(
    party: Party,
    *,
    rank: int,
    addressing: Addressing,
    source: Party,
    channel: Channel,
    reading: Reading = STRICT,
) -> bool:
    """May ``party`` receive an element with this effective label and addressing over
    ``channel``? (DESIGN.md §3, "Who may receive" and "Per-partner limits")."""
    if party.hub or party.status != "active":
        return False  # "a suspended or withdrawn partner gets nothing"; the community is active
    if rank == RED and channel not in RED_CHANNELS:
        if channel is not Channel.STIX or reading.red_not_in_stix:
            return False
    if channel is Channel.NOTIFY_VIA and rank > AMBER:
        # "AMBER recipients may pass it to their own clients on need-to-know"; AMBER+STRICT:
        # "no constituency notifications"; RED never "through a partner to its constituency".
        return False
    own = party.uuid == source.uuid
    if rank > CEILING[party.tier] and (reading.ceiling_binds_source or not own):
        return False
    if own and (channel is not Channel.NOTIFY_VIA or not reading.via_not_own):
        return True  # "The source organisation always receives its own items back."
    if addressing.hub:
        return False  # "distribution 0 addresses the hub alone ... never redistributed"
    if rank >= AMBER_STRICT and not (
        addressing.named and addressing.members is not None and party.uuid in addressing.members
    ):
        return False  # "only organisations named by a sharing group"
    if addressing.members is not None and party.uuid not in addressing.members:
        return False  # a sharing group: its members only
    if rank > CLEAR and not party.tlp:
        return False  # "a partner without the TLP agreement gets CLEAR only"
    return True  # CLEAR: every active partner; GREEN/AMBER: the community (active, agreed)


# --- labels of elements ---------------------------------------------------------------------


def own_rank(tags: Iterable[Tag]) -> int | None:
    """ "the most restrictive of its own markings"; None when it has no TLP tag."""
    ranks = [r for t in tags if (r := tlp_rank_of(t.name)) is not None]
    return max(ranks) if ranks else None


def event_rank(event: Event) -> int:
    own = own_rank(event.tags)
    return DEFAULT_RANK if own is None else own


def _at_least(inherited: int, own: int | None) -> int:
    """ "An attribute never lowers what it inherits" (the per-source policy is off)."""
    return inherited if own is None else max(inherited, own)


def object_rank(event: Event, obj: Obj) -> int:
    """ "A MISP object goes or stays whole: its label is the highest of its own and its
    attributes'" (and, as every element, at least what it inherits from the event)."""
    base = _at_least(event_rank(event), own_rank(obj.tags))
    return max([base, *(_at_least(base, own_rank(a.tags)) for a in obj.attributes)])


# --- the release ----------------------------------------------------------------------------


@dataclass
class Release:
    """What one partner receives of one event over one channel."""

    event: Event
    source: Party
    rank: int  # the event's effective label
    own: bool  # the partner is the source
    attributes: dict[str, tuple[Attr, int]]  # standalone and object attributes → label
    standalone: set[str]
    objects: dict[str, tuple[Obj, int]]
    reports: dict[str, Report]
    event_tags: set[str]  # non-TLP tag names that go out with the event
    attribute_tags: dict[str, set[str]]  # attribute uuid → non-TLP tag names that go out

    @property
    def attribute_count(self) -> int:
        return len(self.attributes)

    def values(self) -> set[str]:
        return {a.value for a, _ in self.attributes.values()}


def _tags_out(tags: Iterable[Tag], *, strip_producer: bool) -> set[str]:
    """ "Never leave: ... local tags"; TLP colour tags are replaced by the effective label;
    TLP:EX:CHR: "nothing that names or narrows down the creator leaves (... producer galaxy
    tags ...)"."""
    out = set()
    for t in tags:
        if t.local or tlp_rank_of(t.name) is not None:
            continue
        if strip_producer and t.name.startswith(PRODUCER_PREFIX):
            continue
        out.add(t.name)
    return out


def _pushable(distribution: int | None) -> bool:
    """A pushing MISP removes elements whose own distribution is 0 or 1 (reference
    misp-sync.md §4.2); 5 and a missing one inherit the event's (which is pushed: ≥ 2)."""
    return distribution not in (0, 1)


def release(
    world: World, event: Event, party: Party, channel: Channel, reading: Reading = STRICT
) -> Release | None:
    """The event as ``party`` may receive it over ``channel``; None: not at all, not even its
    title ("an event with no attribute, object or report left is not delivered")."""
    source = world.party(event.source)
    e_rank = event_rank(event)
    e_addr = event_addressing(world, event)
    push = channel is Channel.PUSH and reading.push_like_misp
    if channel is Channel.PUSH:
        # A MISP pushes published events only, never back to where they came from, and (see
        # Reading.push_like_misp) not events of distribution 0 or 1 (misp-sync.md §2.3, §4.1).
        dist = DEFAULT_EVENT_DISTRIBUTION if event.distribution is None else event.distribution
        if not event.published or party.uuid == source.uuid or (push and dist < 2):
            return None
    # Over push the rules are MISP sync's: RED never goes.
    decide_as = Channel.MISP if channel is Channel.PUSH else channel

    def may(rank: int, addressing: Addressing) -> bool:
        return may_receive(
            party,
            rank=rank,
            addressing=addressing,
            source=source,
            channel=decide_as,
            reading=reading,
        )

    def child(parent: Addressing, element: Attr | Obj | Report) -> Addressing:
        return child_addressing(world, parent, element.distribution, element.group, source, reading)

    if not may(e_rank, e_addr):
        return None  # the title goes with the event's own label and addressing
    attributes: dict[str, tuple[Attr, int]] = {}
    standalone: set[str] = set()
    for a in event.attributes:
        rank = _at_least(e_rank, own_rank(a.tags))
        addr = child(e_addr, a)
        if may(rank, addr) and (not push or _pushable(a.distribution)):
            attributes[a.uuid] = (a, rank)
            standalone.add(a.uuid)
    objects: dict[str, tuple[Obj, int]] = {}
    for o in event.objects:
        rank = object_rank(event, o)
        o_addr = child(e_addr, o)
        ok = may(rank, o_addr) and (not push or _pushable(o.distribution))
        going = [
            a
            for a in o.attributes
            if may(rank, child(o_addr, a)) and (not push or _pushable(a.distribution))
        ]
        if reading.object_whole_addressing and len(going) != len(o.attributes):
            ok = False  # the object goes whole or not at all (Reading.object_whole_addressing)
        if ok and going:
            objects[o.uuid] = (o, rank)
            for a in going:
                attributes[a.uuid] = (a, rank)  # "a MISP object's effective label on each"
    reports: dict[str, Report] = {}
    for r in event.reports:
        addr = child(e_addr, r)
        if may(e_rank, addr) and (not push or _pushable(r.distribution)):
            reports[r.uuid] = r
    if not (attributes or reports):
        return None
    own = party.uuid == source.uuid
    strip = event.chr and not own
    return Release(
        event=event,
        source=source,
        rank=e_rank,
        own=own,
        attributes=attributes,
        standalone=standalone,
        objects=objects,
        reports=reports,
        event_tags=_tags_out(event.tags, strip_producer=strip),
        attribute_tags={
            a.uuid: _tags_out(a.tags, strip_producer=strip)
            for a, _ in attributes.values()  # object attributes carry their own tags only
        },
    )


def view(
    world: World, party: Party, channel: Channel, reading: Reading = STRICT
) -> dict[str, Release]:
    """Every event ``party`` receives over ``channel``, by uuid."""
    out = {}
    for event in world.events:
        rel = release(world, event, party, channel, reading)
        if rel is not None:
            out[event.uuid] = rel
    return out


def held_distribution(element: Event | Attr | Obj | Report) -> int:
    """The distribution the hub holds (and ``/misp`` serves: "no second downgrade")."""
    if element.distribution is not None:
        return element.distribution
    return DEFAULT_EVENT_DISTRIBUTION if isinstance(element, Event) else INHERIT


def pushed_distribution(element: Event | Attr | Obj | Report) -> int:
    """What a pushing MISP sends: 2 → 1, the rest as held."""
    held = held_distribution(element)
    return 1 if held == 2 else held


# --- notifications --------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """One observation a notification must carry (liveness) or may carry (safety)."""

    event: str
    attribute: str
    value: str


def notification_observations(
    world: World, party: Party, *, via: bool, reading: Reading = STRICT
) -> tuple[set[Expected], set[Expected], set[str]]:
    """(observations that must arrive, observations that may arrive, events whose sector tag
    must produce a notification) for ``party``'s own notifications (``via=False``: it is a
    registered target) or those it passes on to its constituents (``via=True``)."""
    reach = party.constituency if via else party.targets
    channel = Channel.NOTIFY_VIA if via else Channel.NOTIFY
    must: set[Expected] = set()
    may: set[Expected] = set()
    sectors: set[str] = set()
    if reach is None:
        return must, may, sectors
    for event in world.events:
        rel = release(world, event, party, channel, reading)
        if rel is None:
            continue
        for a, _ in rel.attributes.values():
            if not reach.matches(a.value, a.type):
                continue
            if via and _directly_targeted(world, a):
                continue  # "A registered target is notified directly"
            found = Expected(event.uuid, a.uuid, a.value)
            may.add(found)
            if reach.matches_for_sure(a.value, a.type) and _unique_value(world, a.value):
                must.add(found)
        if via and set(reach.sectors) & event_sectors(event):
            sectors.add(event.uuid)
    return must, may, sectors


def _directly_targeted(world: World, attr: Attr) -> bool:
    return any(
        p.targets is not None and p.targets.matches(attr.value, attr.type) for p in world.partners
    )


def _unique_value(world: World, value: str) -> bool:
    """Repeats are suppressed for 24 h, so only a value that occurs once must arrive."""
    return sum(a.value == value for e in world.events for _, a in e.all_attributes()) == 1


SECTOR_TAG = re.compile(r'^cwn:sector="([a-z-]+)"$')


def event_sectors(event: Event) -> set[str]:
    return {m.group(1) for t in event.tags if not t.local and (m := SECTOR_TAG.match(t.name))}


# --- tokens: every secret in the world, and whom it belongs to ------------------------------

TEXT_TOKEN = re.compile(r"zq[0-9a-f]{10}")
UUID_TOKEN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
IP_TOKEN = re.compile(r"(?<![\d.])10\.1\d\d\.1\d\d\.1\d\d(?![\d])")
ID_TOKEN = re.compile(r"(?<!\d)98\d{10}(?!\d)")
HASH_TOKEN = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
TOKEN_PATTERNS = (TEXT_TOKEN, UUID_TOKEN, IP_TOKEN, ID_TOKEN, HASH_TOKEN)

Owner = tuple[str, ...]
"""("event", e) · ("attr", e, a) · ("object", e, o) · ("report", e, r) · ("etag", e, name) ·
("atag", e, a, name) · ("own", e) · ("group", g) · ("never", why)"""


def find_tokens(text: str) -> set[str]:
    """Every token-shaped string in ``text`` (lower-cased; uuids are compared lower-case)."""
    low = text.lower()
    found: set[str] = set()
    for pattern in TOKEN_PATTERNS:
        found.update(pattern.findall(low))
    return found


def _text_tokens(text: str) -> set[str]:
    return (
        set(TEXT_TOKEN.findall(text.lower()))
        | set(IP_TOKEN.findall(text))
        | set(HASH_TOKEN.findall(text.lower()))
        | set(ID_TOKEN.findall(text))
    )


@dataclass
class Universe:
    """Token → owners, and sharing group → the elements that carry it."""

    owners: dict[str, list[Owner]] = field(default_factory=dict)
    carriers: dict[str, list[Owner]] = field(default_factory=dict)

    def add(self, text: str, owner: Owner) -> None:
        for token in _text_tokens(text) | set(UUID_TOKEN.findall(text.lower())):
            self.owners.setdefault(token, []).append(owner)


def universe(world: World) -> Universe:
    u = Universe()

    def group(g: Group | None, carrier: Owner) -> None:
        if g is None:
            return
        u.carriers.setdefault(g.uuid, []).append(carrier)
        u.add(g.uuid, ("group", g.uuid))
        u.add(g.name, ("group", g.uuid))
        u.add(g.input_id, ("never", "the source's numeric sharing group id"))
        for org_uuid, org_name in g.outsiders:
            u.add(org_uuid, ("group", g.uuid))
            u.add(org_name, ("group", g.uuid))

    for e in world.events:
        ev = ("event", e.uuid)
        u.add(e.uuid, ev)
        u.add(e.info, ev)
        for t in e.tags:
            u.add(t.name, ("etag", e.uuid, t.name))
        group(e.group, ev)
        for p in e.proposals:
            for text in (p.uuid, p.value, p.email):
                u.add(text, ("never", "a proposal"))
        if e.creator_email:
            u.add(e.creator_email, ("own", e.uuid))  # Reading.creator_email_own_only
        if e.claimed_orgc:
            for text in e.claimed_orgc:
                u.add(text, ("never", "a creator the body claims (the submitter is the creator)"))
        for text in e.input_ids or ():
            u.add(text, ("never", "the source's internal numeric id"))
        for _, a in e.all_attributes():
            owner = ("attr", e.uuid, a.uuid)
            for text in (a.uuid, a.value, a.comment):
                u.add(text, owner)
            u.add(a.input_id, ("never", "the source's internal numeric id"))
            for t in a.tags:
                u.add(t.name, ("atag", e.uuid, a.uuid, t.name))
            group(a.group, owner)
            for s in a.sightings:
                u.add(s.uuid, owner)
                u.add(s.source, owner)
                if not s.claimed:
                    for text in (s.org_uuid, s.org_name):
                        u.add(text, ("never", "a sighting organisation the body names"))
            for p in a.proposals:
                for text in (p.uuid, p.value, p.email):
                    u.add(text, ("never", "a proposal"))
        for o in e.objects:
            u.add(o.uuid, ("object", e.uuid, o.uuid))
            u.add(o.input_id, ("never", "the source's internal numeric id"))
            group(o.group, ("object", e.uuid, o.uuid))
        for r in e.reports:
            owner = ("report", e.uuid, r.uuid)
            for text in (r.uuid, r.name, r.content):
                u.add(text, owner)
            group(r.group, owner)
    for s in world.sightings:
        u.add(s.source, ("attr", s.event, s.attribute) if s.accepted else ("never", "refused"))
    return u


def allowed(
    owner: Owner, releases: dict[str, Release], u: Universe, reading: Reading = STRICT
) -> bool:
    """May a token of ``owner`` appear in a response to a partner who receives ``releases``?"""
    kind = owner[0]
    if kind == "never":
        return False
    if kind == "group":
        return any(allowed(c, releases, u, reading) for c in u.carriers.get(owner[1], []))
    rel = releases.get(owner[1])
    if rel is None:
        return False
    if kind == "event":
        return True
    if kind == "own":
        return rel.own or (not reading.creator_email_own_only and not rel.event.chr)
    if kind == "attr":
        return owner[2] in rel.attributes
    if kind == "object":
        return owner[2] in rel.objects
    if kind == "report":
        return owner[2] in rel.reports
    if kind == "etag":
        return owner[2] in rel.event_tags
    if kind == "atag":
        return owner[3] in rel.attribute_tags.get(owner[2], set())
    raise AssertionError(owner)


def describe(owner: Owner) -> str:
    kind = owner[0]
    if kind == "never":
        return f"never leaves: {owner[1]}"
    return f"{kind} {'/'.join(owner[1:])}"


# --- the source's submission ----------------------------------------------------------------


def _tags(tags: Iterable[Tag]) -> list[dict[str, Any]]:
    return [{"name": t.name, **({"local": True} if t.local else {})} for t in tags]


def _group_doc(world: World, g: Group, source: Party) -> dict[str, Any]:
    orgs = [
        {"Organisation": {"uuid": world.party(k).uuid, "name": world.party(k).name}}
        for k in g.members
    ]
    orgs += [{"Organisation": {"uuid": u, "name": n}} for u, n in g.outsiders]
    doc: dict[str, Any] = {"uuid": g.uuid, "name": g.name, "SharingGroupOrg": orgs}
    if g.input_id:
        doc["id"] = g.input_id
    return doc


def _addressing_doc(world: World, element: Attr | Obj | Report, source: Party) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if element.distribution is not None:
        out["distribution"] = str(element.distribution)
    if element.group is not None:
        out["SharingGroup"] = _group_doc(world, element.group, source)
        if element.group.input_id:
            out["sharing_group_id"] = element.group.input_id
    return out


def _attribute_doc(world: World, event: Event, a: Attr, source: Party) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "uuid": a.uuid,
        "type": a.type,
        "category": a.category,
        "value": a.value,
        "to_ids": a.to_ids,
        "timestamp": str(a.timestamp or event.timestamp),
        **_addressing_doc(world, a, source),
    }
    if a.relation:
        doc["object_relation"] = a.relation
    if a.tags:
        doc["Tag"] = _tags(a.tags)
    if a.comment:
        doc["comment"] = a.comment
    if a.input_id:
        doc["id"] = a.input_id
        if event.input_ids:
            doc["event_id"] = event.input_ids[0]
    if a.sightings:
        doc["Sighting"] = [
            {
                "uuid": s.uuid,
                "type": "0",
                "date_sighting": str(event.timestamp + 60),
                "source": s.source,
                "Organisation": {"uuid": s.org_uuid, "name": s.org_name},
            }
            for s in a.sightings
        ]
    if a.proposals:
        doc["ShadowAttribute"] = [_proposal_doc(event, p, old=a.input_id) for p in a.proposals]
    return doc


def _proposal_doc(event: Event, p: Proposal, *, old: str = "") -> dict[str, Any]:
    return {
        "uuid": p.uuid,
        "type": p.type,
        "category": "Network activity",
        "value": p.value,
        "email": p.email,
        "to_ids": True,
        "event_uuid": event.uuid,
        "old_id": old or "0",
        "timestamp": str(event.timestamp),
    }


def payload(world: World, event: Event) -> dict[str, Any]:
    """The MISP event its source submits."""
    source = world.party(event.source)
    doc: dict[str, Any] = {
        "uuid": event.uuid,
        "info": event.info,
        "date": "2026-01-15",
        "threat_level_id": "2",
        "analysis": "1",
        "published": event.published,
        "timestamp": str(event.timestamp),
        "Tag": _tags(event.tags),
        "Attribute": [_attribute_doc(world, event, a, source) for a in event.attributes],
    }
    if event.distribution is not None:
        doc["distribution"] = str(event.distribution)
    if event.group is not None:
        doc["SharingGroup"] = _group_doc(world, event.group, source)
        if event.group.input_id:
            doc["sharing_group_id"] = event.group.input_id
    if event.objects:
        doc["Object"] = [
            {
                "uuid": o.uuid,
                "name": o.name,
                "meta-category": o.meta_category,
                "template_uuid": o.template_uuid,
                "template_version": "1",
                "timestamp": str(event.timestamp),
                **_addressing_doc(world, o, source),
                **({"Tag": _tags(o.tags)} if o.tags else {}),
                **({"id": o.input_id} if o.input_id else {}),
                "Attribute": [_attribute_doc(world, event, a, source) for a in o.attributes],
            }
            for o in event.objects
        ]
    if event.reports:
        doc["EventReport"] = [
            {
                "uuid": r.uuid,
                "name": r.name,
                "content": r.content,
                "timestamp": str(event.timestamp),
                **_addressing_doc(world, r, source),
            }
            for r in event.reports
        ]
    if event.proposals:
        doc["ShadowAttribute"] = [_proposal_doc(event, p) for p in event.proposals]
    if event.creator_email:
        doc["event_creator_email"] = event.creator_email
    if event.claimed_orgc:
        doc["Orgc"] = {"uuid": event.claimed_orgc[0], "name": event.claimed_orgc[1]}
    if event.input_ids:
        doc["id"], doc["org_id"], doc["orgc_id"] = event.input_ids
    return {"Event": doc}

"""`decide`: may this element go to this recipient over this channel, and why.

The rules are DESIGN.md §3. The checks run in a fixed order, and the first that fails gives the
reason code, so the same question always gets the same answer:

1. `quarantine`: the element's label could not be determined (unknown or malformed marking).
2. Open feeds ignore who fetches: only CLEAR that the source sent to all communities
   (distribution 3) goes out (`red-channel-forbidden`, `not-public`, `hub-only`, `not-addressed`).
3. `channel-recipient-mismatch`: a constituent is reached only by `notify-constituent`, and that
   channel only reaches constituents.
4. `recipient-not-active`: suspended, withdrawn, prospect or onboarding partners get nothing
   (for a constituent: its partner).
5. `red-channel-forbidden`: RED only over REST and as a notification to the named organisation,
   for everyone (the source too: RED is never in MISP sync, TAXII, feeds or exports).
6. `source-receives-own`: the source always gets its own items back.
7. `not-a-partner`: only partners receive (non-partner sharing-group members are ignored).
8. `strict-no-forwarding`: AMBER+STRICT never goes through a partner to its constituents.
9. `hub-only`: distribution 0, or AMBER+STRICT/RED without a sharing group, was addressed to the
   hub alone and is never redistributed.
10. `not-addressed`: a sharing group (or named list) that does not name the recipient.
11. `no-tlp-agreement`: without the TLP agreement a partner receives CLEAR only.
12. `not-in-community`: GREEN/AMBER addressed to the community reach community tiers only.
13. `above-tier-ceiling`: the tier's ceiling applies whether or not the partner is named.

Allowed: `allowed-named`, `allowed-community`, `allowed-constituent`, `allowed-public`,
`source-receives-own`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum

from tlp.labels import Tlp
from tlp.policy import STATUSES, TIERS, Policy


class Channel(StrEnum):
    """How a delivery leaves the hub."""

    MISP_SYNC = "misp-sync"
    REST = "rest"
    TAXII = "taxii"
    FEED = "feed"
    NOTIFY_PARTNER = "notify-partner"
    NOTIFY_CONSTITUENT = "notify-constituent"
    EXPORT = "export"


#: The only channels RED may use (to a named organisation itself).
RED_CHANNELS: frozenset[Channel] = frozenset({Channel.REST, Channel.NOTIFY_PARTNER})


class Reason(StrEnum):
    """Stable reason codes, recorded in the audit log with every decision and removal."""

    # allowed
    SOURCE_RECEIVES_OWN = "source-receives-own"
    ALLOWED_NAMED = "allowed-named"
    ALLOWED_COMMUNITY = "allowed-community"
    ALLOWED_CONSTITUENT = "allowed-constituent"
    ALLOWED_PUBLIC = "allowed-public"
    # denied
    QUARANTINE = "quarantine"
    CHANNEL_RECIPIENT_MISMATCH = "channel-recipient-mismatch"
    RECIPIENT_NOT_ACTIVE = "recipient-not-active"
    NOT_A_PARTNER = "not-a-partner"
    RED_CHANNEL_FORBIDDEN = "red-channel-forbidden"
    STRICT_NO_FORWARDING = "strict-no-forwarding"
    HUB_ONLY = "hub-only"
    NOT_ADDRESSED = "not-addressed"
    NO_TLP_AGREEMENT = "no-tlp-agreement"
    NOT_IN_COMMUNITY = "not-in-community"
    ABOVE_TIER_CEILING = "above-tier-ceiling"
    NOT_PUBLIC = "not-public"
    OTHER_EXERCISE = "other-exercise"
    # removals by the filters (not returned by `decide`)
    OBJECT_WHOLE = "object-whole"
    PARENT_REMOVED = "parent-removed"
    NOTHING_LEFT = "nothing-left"


ALLOWED_REASONS: frozenset[Reason] = frozenset(
    {
        Reason.SOURCE_RECEIVES_OWN,
        Reason.ALLOWED_NAMED,
        Reason.ALLOWED_COMMUNITY,
        Reason.ALLOWED_CONSTITUENT,
        Reason.ALLOWED_PUBLIC,
    }
)


@dataclass(frozen=True, slots=True)
class Addressing:
    """Whom the source sent an element to (MISP distribution semantics).

    Attributes:
        distribution: 0 the hub alone, 1 this community, 2 connected communities, 3 all
            communities, 4 the organisations in `members`. (5, "inherit", is resolved by the
            caller: see `narrow`.)
        members: organisation uuids a sharing group or named-recipient list names (distribution 4
            only). Include the source; `roaming`/`extend` is not followed.

    >>> Addressing.sharing_group({"org-a", "org-b"}).names("org-a")
    True
    """

    distribution: int
    members: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.distribution not in (0, 1, 2, 3, 4):
            raise ValueError(f"distribution must be 0..4, not {self.distribution!r}")
        if self.distribution == 4:
            if self.members is None:
                object.__setattr__(self, "members", frozenset())
            elif not isinstance(self.members, frozenset):
                object.__setattr__(self, "members", frozenset(self.members))
        elif self.members is not None:
            raise ValueError("members are only for distribution 4 (sharing group)")

    @classmethod
    def community(cls) -> Addressing:
        """This community: what a STIX bundle without addressing information means."""
        return _COMMUNITY

    @classmethod
    def hub_only(cls) -> Addressing:
        """Distribution 0: addressed to the hub alone."""
        return _HUB_ONLY

    @classmethod
    def sharing_group(cls, members: Iterable[str]) -> Addressing:
        """A sharing group or named-recipient list naming `members` (organisation uuids)."""
        return cls(4, frozenset(members))

    @classmethod
    def from_misp(cls, distribution: int, members: Iterable[str] | None = None) -> Addressing:
        """Addressing from a MISP distribution (0-4) and, for 4, the sharing group's members.

        The one adapter from MISP's distribution to TLP addressing: 4 names `members` (none
        known: nobody but the source, who is always allowed its own), 1-3 the community, 0
        (and anything unknown: fail closed) the hub alone. 5 ("inherit") is resolved by the
        caller from the parent, then narrowed with `narrow`.

        >>> Addressing.from_misp(2).is_community, Addressing.from_misp(0).distribution
        (True, 0)
        """
        if distribution == 4:
            return cls(4, frozenset(members or ()))
        if distribution in (1, 2, 3):
            return _BY_DISTRIBUTION[distribution]
        return _HUB_ONLY

    @property
    def is_community(self) -> bool:
        """Distribution 1-3."""
        return 1 <= self.distribution <= 3

    def names(self, org_uuid: str) -> bool:
        """True when a sharing group names `org_uuid`."""
        return self.members is not None and org_uuid in self.members

    def narrow(self, child: Addressing) -> Addressing:
        """Addressing of a child element (attribute, object, report) inside this one.

        A child with its own sharing group goes only to members of that group who may also see
        the parent (DESIGN.md §3): the result is never wider than either side.
        """
        if self.distribution == 0 or child.distribution == 0:
            return _HUB_ONLY
        if self.members is not None and child.members is not None:
            return Addressing(4, self.members & child.members)
        if self.members is not None:
            return self
        if child.members is not None:
            return child
        return self if self.distribution <= child.distribution else child


_COMMUNITY = Addressing(1)
_HUB_ONLY = Addressing(0)
_BY_DISTRIBUTION = {1: _COMMUNITY, 2: Addressing(2), 3: Addressing(3)}


@dataclass(frozen=True, slots=True)
class Recipient:
    """An organisation the hub may deliver to, as the hub's partner row describes it.

    Attributes:
        org_uuid: the organisation's uuid (MISP `Orgc.uuid` spelling).
        tier: `core`, `ecosystem`, `connection`, or None for a non-partner.
        status: partner lifecycle status; only `active` receives anything.
        tlp_accepted: whether it accepted the network's TLP rules (without: CLEAR only).
        via_partner: set for a constituent reached through a partner; the partner's data then
            decides, and the channel must be `notify-constituent`.
        exercise: the exercise this recipient receives for (an exercise-only key), None for
            real traffic. An item goes only to recipients of its own exercise (`in_scope`).

    >>> partner = Recipient("org-z", tier="core", status="active", tlp_accepted=True)
    >>> Recipient.constituent("hospital-1", via=partner).via_partner is partner
    True
    """

    org_uuid: str
    tier: str | None
    status: str
    tlp_accepted: bool
    via_partner: Recipient | None = None
    exercise: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.org_uuid, str) or not self.org_uuid:
            raise ValueError("org_uuid must be a non-empty string")
        if self.tier is not None and self.tier not in TIERS:
            raise ValueError(f"unknown tier {self.tier!r}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        if self.via_partner is not None and self.via_partner.via_partner is not None:
            raise ValueError("a constituent is reached through a partner, not a chain")

    @classmethod
    def constituent(cls, org_uuid: str, *, via: Recipient) -> Recipient:
        """A constituent (client) of partner `via`, reached through that partner."""
        return cls(
            org_uuid,
            tier=None,
            status="active",
            tlp_accepted=False,
            via_partner=via,
            exercise=via.exercise,
        )

    @property
    def scope(self) -> str | None:
        """The exercise this recipient receives for (a constituent: its partner's)."""
        return self.via_partner.exercise if self.via_partner is not None else self.exercise


@dataclass(frozen=True, slots=True)
class Obligation:
    """What the recipient may do with a delivery; travels with it (e.g. an `X-Hub-TLP` header).

    Attributes:
        label: the effective label.
        sentence: FIRST's TLP 2.0 sentence for the label.
        strip_attribution: TLP:EX:CHR: the source's identity was removed and must not be disclosed.
        handling: further handling notes from the source (PAP labels), shown as they are.
    """

    label: Tlp
    sentence: str
    strip_attribution: bool = False
    handling: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of `decide`; recorded in the audit log, allowed or not.

    Attributes:
        allowed: whether the element may be delivered.
        reason: stable reason code.
        sentence: the reason for people.
        label: the effective label (None when quarantined).
        channel: the channel asked about.
        policy_version: `Policy.version` the decision was made under.
        obligation: what the recipient may do with it; None when not allowed.
    """

    allowed: bool
    reason: Reason
    sentence: str
    label: Tlp | None
    channel: Channel
    policy_version: str
    obligation: Obligation | None = None


def _display(label: Tlp | None) -> str:
    return "an unreadable marking" if label is None else label.display


def _sentence(reason: Reason, label: Tlp | None, recipient: Recipient, channel: Channel) -> str:
    what = _display(label)
    org = recipient.org_uuid
    partner = recipient.via_partner.org_uuid if recipient.via_partner is not None else org
    match reason:
        case Reason.SOURCE_RECEIVES_OWN:
            return f"{org} is the source of this {what} item and receives its own items back."
        case Reason.ALLOWED_NAMED:
            return (
                f"The source named {org} in its sharing group; {what} may go to it over {channel}."
            )
        case Reason.ALLOWED_COMMUNITY:
            return f"The source addressed the community; {org} may receive {what} over {channel}."
        case Reason.ALLOWED_CONSTITUENT:
            return f"{what} may reach {org}, a client of partner {partner}, through that partner."
        case Reason.ALLOWED_PUBLIC:
            return "TLP:CLEAR released to all communities may go to open feeds."
        case Reason.QUARANTINE:
            return "The item has an unknown or malformed marking and is held in quarantine."
        case Reason.CHANNEL_RECIPIENT_MISMATCH:
            return (
                f"Constituents are reached only by notify-constituent; {org} cannot get {channel}."
            )
        case Reason.RECIPIENT_NOT_ACTIVE:
            return f"Partner {partner} is not active and receives nothing."
        case Reason.NOT_A_PARTNER:
            return f"{partner} is not a partner of the network and receives nothing."
        case Reason.RED_CHANNEL_FORBIDDEN:
            return (
                "TLP:RED goes only over REST or as a notification to the named organisation, "
                f"not {channel}."
            )
        case Reason.STRICT_NO_FORWARDING:
            return (
                "TLP:AMBER+STRICT stays inside the recipient organisation: "
                "no constituent notifications."
            )
        case Reason.HUB_ONLY:
            return (
                f"The source addressed this {what} item to the hub alone; "
                "it is never redistributed."
            )
        case Reason.NOT_ADDRESSED:
            return f"The source did not address this {what} item to {partner}."
        case Reason.NO_TLP_AGREEMENT:
            return (
                f"{partner} has not accepted the network's TLP rules and receives TLP:CLEAR only."
            )
        case Reason.NOT_IN_COMMUNITY:
            return f"{partner} is outside the community this {what} item was shared with."
        case Reason.ABOVE_TIER_CEILING:
            return f"{what} is above the ceiling of {partner}'s tier."
        case Reason.NOT_PUBLIC:
            return f"Only TLP:CLEAR goes to open feeds, not {what}."
        case _:  # pragma: no cover - filter-only reasons have their own sentences
            return str(reason)


def decide(
    *,
    label: Tlp | None,
    recipient: Recipient,
    channel: Channel | str,
    addressing: Addressing,
    source_org_uuid: str | None,
    policy: Policy,
    strip_attribution: bool = False,
    handling: Iterable[str] = (),
) -> Decision:
    """Decide whether one element may go to `recipient` over `channel`.

    Args:
        label: the element's effective label; None means it could not be determined
            (quarantine: never delivered).
        recipient: who would receive it.
        channel: how it would leave the hub.
        addressing: whom the source sent it to (already narrowed by its parents).
        source_org_uuid: the organisation that submitted the element to the hub.
        policy: the network policy; its version is recorded in the decision.
        strip_attribution: the element carries TLP:EX:CHR.
        handling: handling notes (PAP) to pass on in the obligation.

    Returns:
        The decision, with a stable reason code and an obligation when allowed.

    >>> core = Recipient("org-b", tier="core", status="active", tlp_accepted=True)
    >>> d = decide(label=Tlp.AMBER, recipient=core, channel="taxii",
    ...            addressing=Addressing.community(), source_org_uuid="org-a", policy=Policy())
    >>> d.allowed, d.reason.value
    (True, 'allowed-community')
    """
    channel = Channel(channel)
    reason = _reason(label, recipient, channel, addressing, source_org_uuid, policy)
    allowed = reason in ALLOWED_REASONS
    obligation = None
    if allowed:
        assert label is not None
        strip = strip_attribution and reason is not Reason.SOURCE_RECEIVES_OWN
        obligation = Obligation(label, label.first_sentence, strip, tuple(handling))
    return Decision(
        allowed=allowed,
        reason=reason,
        sentence=_sentence(reason, label, recipient, channel),
        label=label,
        channel=channel,
        policy_version=policy.version,
        obligation=obligation,
    )


def _reason(
    label: Tlp | None,
    recipient: Recipient,
    channel: Channel,
    addressing: Addressing,
    source_org_uuid: str | None,
    policy: Policy,
) -> Reason:
    if label is None:
        return Reason.QUARANTINE
    distribution = addressing.distribution
    if channel is Channel.FEED:
        if label is Tlp.RED:
            return Reason.RED_CHANNEL_FORBIDDEN
        if label is not Tlp.CLEAR:
            return Reason.NOT_PUBLIC
        if distribution == 0:
            return Reason.HUB_ONLY
        if distribution != 3:
            return Reason.NOT_ADDRESSED
        return Reason.ALLOWED_PUBLIC
    via = recipient.via_partner
    if (channel is Channel.NOTIFY_CONSTITUENT) != (via is not None):
        return Reason.CHANNEL_RECIPIENT_MISMATCH
    partner = via if via is not None else recipient
    if partner.status != "active":
        return Reason.RECIPIENT_NOT_ACTIVE
    if label is Tlp.RED and channel not in RED_CHANNELS:
        return Reason.RED_CHANNEL_FORBIDDEN
    if via is None and source_org_uuid is not None and recipient.org_uuid == source_org_uuid:
        return Reason.SOURCE_RECEIVES_OWN
    ceiling = policy.ceiling(partner.tier)
    if ceiling is None:
        return Reason.NOT_A_PARTNER
    if label is Tlp.AMBER_STRICT and channel is Channel.NOTIFY_CONSTITUENT:
        return Reason.STRICT_NO_FORWARDING
    if distribution == 0 or (label >= Tlp.AMBER_STRICT and addressing.members is None):
        return Reason.HUB_ONLY
    if addressing.members is not None and partner.org_uuid not in addressing.members:
        return Reason.NOT_ADDRESSED
    if label is not Tlp.CLEAR and not partner.tlp_accepted:
        return Reason.NO_TLP_AGREEMENT
    if (
        addressing.members is None
        and label is not Tlp.CLEAR
        and partner.tier not in policy.community_tiers
    ):
        return Reason.NOT_IN_COMMUNITY
    if label > ceiling:
        return Reason.ABOVE_TIER_CEILING
    if via is not None:
        return Reason.ALLOWED_CONSTITUENT
    if addressing.members is not None:
        return Reason.ALLOWED_NAMED
    return Reason.ALLOWED_COMMUNITY


# --- audience: the same rules, turned into a predicate repositories can run in SQL ---------------


@dataclass(frozen=True, slots=True)
class Audience:
    """What a recipient may receive over a channel, as a pre-filter for repositories.

    An item passes when any branch holds (quarantined items never pass)::

        (own_max IS NOT NULL AND item.source_org = org_uuid AND item.tlp_rank <= own_max.rank)
        OR (item.distribution IN community_distributions
            AND item.tlp_rank <= community_max.rank)
        OR (item.distribution = 4 AND org_uuid IN item.sharing_group
            AND item.tlp_rank <= named_max.rank)

    A None maximum closes its branch. The release path still calls `decide` for every delivery.

    Attributes:
        org_uuid: organisation checked against sharing groups and the source (for a constituent:
            its partner); None for open feeds.
        own_max: highest label of the recipient's own items that may pass, whatever their
            addressing (RED only over REST and notifications); None: own items get no branch.
        community_distributions: distributions of community-addressed items that may pass.
        community_max: highest label of community-addressed items that may pass.
        named_max: highest label of items whose sharing group names `org_uuid`.
        exercise: the only exercise whose items may pass (None: real traffic only); ANDed
            with the branches above (`in_scope`).
    """

    org_uuid: str | None
    own_max: Tlp | None
    community_distributions: frozenset[int]
    community_max: Tlp | None
    named_max: Tlp | None
    exercise: str | None = None

    @property
    def max_label(self) -> Tlp | None:
        """Highest label of another source's item that may pass (None: nothing)."""
        labels = [x for x in (self.community_max, self.named_max) if x is not None]
        return max(labels) if labels else None

    def admits(
        self, label: Tlp | None, addressing: Addressing, source_org_uuid: str | None
    ) -> bool:
        """The predicate above, in Python (equal to `decide(...).allowed`)."""
        if label is None:
            return False
        if (
            self.own_max is not None
            and source_org_uuid is not None
            and source_org_uuid == self.org_uuid
        ):
            return label <= self.own_max
        if addressing.distribution in self.community_distributions and addressing.members is None:
            return self.community_max is not None and label <= self.community_max
        if addressing.members is not None and self.org_uuid is not None:
            return (
                self.named_max is not None
                and self.org_uuid in addressing.members
                and label <= self.named_max
            )
        return False


_NOTHING_DISTRIBUTIONS: frozenset[int] = frozenset()
_COMMUNITY_DISTRIBUTIONS: frozenset[int] = frozenset({1, 2, 3})


def audience_for(recipient: Recipient, channel: Channel | str, policy: Policy) -> Audience:
    """The highest labels and the audience rule for `recipient` over `channel`.

    Args:
        recipient: who would receive (for a constituent, its `via_partner` decides).
        channel: how.
        policy: the network policy.

    Returns:
        An `Audience` whose `admits` agrees with `decide` for every label and addressing.

    >>> conn = Recipient("org-c", tier="connection", status="active", tlp_accepted=True)
    >>> audience_for(conn, "rest", Policy()).max_label
    <Tlp.GREEN: 'green'>
    """
    return replace(_audience(recipient, channel, policy), exercise=recipient.scope)


def _audience(recipient: Recipient, channel: Channel | str, policy: Policy) -> Audience:
    channel = Channel(channel)
    if channel is Channel.FEED:
        return Audience(None, None, frozenset({3}), Tlp.CLEAR, None)
    via = recipient.via_partner
    partner = via if via is not None else recipient
    if (channel is Channel.NOTIFY_CONSTITUENT) != (via is not None) or partner.status != "active":
        return Audience(partner.org_uuid, None, _NOTHING_DISTRIBUTIONS, None, None)
    own = None
    if via is None:
        own = Tlp.RED if channel in RED_CHANNELS else Tlp.AMBER_STRICT
    ceiling = policy.ceiling(partner.tier)
    if ceiling is None:
        return Audience(partner.org_uuid, own, _NOTHING_DISTRIBUTIONS, None, None)
    cap = ceiling if partner.tlp_accepted else Tlp.CLEAR
    if channel is Channel.NOTIFY_CONSTITUENT:
        cap = min(cap, Tlp.AMBER)
    elif channel not in RED_CHANNELS:
        cap = min(cap, Tlp.AMBER_STRICT)
    community = min(cap, Tlp.AMBER)
    if partner.tier not in policy.community_tiers:
        community = Tlp.CLEAR
    return Audience(partner.org_uuid, own, _COMMUNITY_DISTRIBUTIONS, community, cap)


def in_scope(item_exercise: str | None, recipient: Recipient) -> bool:
    """The exercise rule: an item goes only to recipients of its own exercise. Exercise
    items never reach real traffic's recipients, real items never an exercise-only key
    (both None: real traffic). Checked before any TLP question, on every channel."""
    return item_exercise == recipient.scope


def out_of_scope(recipient: Recipient, channel: Channel | str, policy: Policy) -> Decision:
    """The refusal of an item of another exercise (or of real traffic to an exercise key);
    its sentence names no exercise."""
    return Decision(
        False,
        Reason.OTHER_EXERCISE,
        "not in the recipient's exercise scope",
        None,
        Channel(channel),
        policy.version,
    )

"""Policy data: the community, tier ceilings and per-source overrides, with a version string.

These are data, not code, so the hub can load them from configuration and record the version
with every decision (DESIGN.md §3, "Every decision … is recorded with … the policy version").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tlp.labels import Tlp

#: Partner tiers (DESIGN.md §2).
TIERS: frozenset[str] = frozenset({"core", "ecosystem", "connection"})
#: Partner lifecycle statuses (DESIGN.md §2); only `active` partners receive anything.
STATUSES: frozenset[str] = frozenset({"prospect", "onboarding", "active", "suspended", "withdrawn"})

DEFAULT_TIER_CEILINGS: Mapping[str, Tlp] = MappingProxyType(
    {"core": Tlp.RED, "ecosystem": Tlp.AMBER, "connection": Tlp.GREEN}
)


@dataclass(frozen=True, slots=True)
class SourcePolicy:
    """How the hub reads markings from one source.

    Attributes:
        default_label: label for input with no TLP marking anywhere (fail closed: AMBER+STRICT).
        allow_attribute_downgrade: let an attribute's own TLP tag be lower than what it inherits
            from its event or object. Off by default: a lower attribute tag is ignored.
        container_inherits: a STIX object also carries the markings of the containers
            (report, grouping, observed-data …) whose `object_refs` list it; only ever raises.
        default_distribution: MISP distribution assumed for an event that has none (feed-format
            events); 0 means "addressed to the hub alone".
    """

    default_label: Tlp = Tlp.AMBER_STRICT
    allow_attribute_downgrade: bool = False
    container_inherits: bool = True
    default_distribution: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.default_label, Tlp):
            raise TypeError("default_label must be a Tlp")
        if self.default_distribution not in (0, 1, 2, 3):
            raise ValueError("default_distribution must be 0..3")


@dataclass(frozen=True, slots=True, eq=False)
class Policy:
    """The network's TLP policy.

    Attributes:
        version: recorded with every decision; change it whenever any field changes.
        tier_ceilings: highest label each tier may receive, named or not.
        community_tiers: tiers that form "the community" that GREEN/AMBER community-addressed
            items reach (default: every tier; a partner must also be active and have accepted the
            network's TLP rules).
        default_source: the `SourcePolicy` for sources without an override.
        sources: per-source overrides, keyed by the source organisation's uuid.

    >>> Policy(version="2025-1").ceiling("connection")
    <Tlp.GREEN: 'green'>
    """

    version: str = "cwn-tlp-1"
    tier_ceilings: Mapping[str, Tlp] = field(default_factory=lambda: DEFAULT_TIER_CEILINGS)
    community_tiers: frozenset[str] = TIERS
    default_source: SourcePolicy = field(default_factory=SourcePolicy)
    sources: Mapping[str, SourcePolicy] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.version:
            raise ValueError("a policy needs a version string")
        unknown = (set(self.tier_ceilings) | set(self.community_tiers)) - TIERS
        if unknown:
            raise ValueError(f"unknown tiers in policy: {sorted(unknown)}")
        object.__setattr__(self, "tier_ceilings", MappingProxyType(dict(self.tier_ceilings)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))
        object.__setattr__(self, "community_tiers", frozenset(self.community_tiers))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Read-only mappings do not pickle; a policy goes to another process (the hub
        # prepares a large submission there) as plain dicts and is rebuilt the same.
        return (
            Policy,
            (
                self.version,
                dict(self.tier_ceilings),
                self.community_tiers,
                self.default_source,
                dict(self.sources),
            ),
        )

    def ceiling(self, tier: str | None) -> Tlp | None:
        """Highest label a partner of `tier` may receive; None for non-partners (own items only)."""
        if tier is None:
            return None
        return self.tier_ceilings.get(tier)

    def for_source(self, org_uuid: str | None) -> SourcePolicy:
        """The source policy for items whose source is `org_uuid`."""
        if org_uuid is None:
            return self.default_source
        return self.sources.get(org_uuid, self.default_source)


DEFAULT_POLICY = Policy()

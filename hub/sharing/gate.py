"""``tlp.decide`` for one recipient over one channel (``Gate``), and an element's addressing
narrowed by its parent's: the two questions every part of the released view asks
(``hub.sharing.view``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

import tlp
from hub.sharing.recipients import Recipient
from hub.sharing.records import addressing_of, label_of

INHERIT = 5  # a distribution that takes its parent's addressing


class Gate:
    """``tlp.decide`` for one recipient over one channel, each distinct question asked once
    (a page has few distinct labels and addressings)."""

    __slots__ = ("_cache", "_org", "_recipient", "write_answer", "channel", "policy")

    def __init__(
        self,
        to: Recipient | tlp.Recipient,
        channel: tlp.Channel | str,
        policy: tlp.Policy,
        *,
        write_answer: bool = False,
    ) -> None:
        """``to``: a recipient, or (for a constituent reached through a partner) the
        ``tlp.Recipient`` itself. ``write_answer``: this is the answer to the caller's own
        write, recorded as such (``"answer": "write"``) and decided like any other delivery
        over the channel: the writer's own RED comes back over ``/misp`` as a stub, since
        RED never travels in MISP sync (DESIGN.md §3)."""
        self._recipient = to.tlp if isinstance(to, Recipient) else to
        self._org = self._recipient.org_uuid
        self.channel = tlp.Channel(channel)
        self.policy = policy
        self.write_answer = write_answer
        self._cache: dict[tuple[Any, ...], tlp.Decision] = {}

    @property
    def org_uuid(self) -> str:
        return self._org

    def decide(self, rank: int, addressing: tlp.Addressing, source: str) -> tlp.Decision:
        key = (rank, addressing, source == self._org)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = tlp.decide(
                label=label_of(rank),
                recipient=self._recipient,
                channel=self.channel,
                addressing=addressing,
                source_org_uuid=source,
                policy=self.policy,
            )
        return found

    def event(self, row: Any) -> tlp.Decision:
        """The decision on an event itself (its exercise, label and addressing), from its
        row. The exercise rule comes first: the row must carry ``exercise_id`` (a row read
        without it fails loudly rather than passing an exercise item as real traffic)."""
        if not tlp.in_scope(row.exercise_id, self._recipient):
            return tlp.out_of_scope(self._recipient, self.channel, self.policy)
        return self.decide(
            row.tlp_rank, addressing_of(row.distribution, row.sg_members), row.orgc_uuid
        )

    def profile(self, row: Any) -> Profiled | None:
        """What the recipient receives of a non-narrowed event, from its row (None: the
        event is narrowed or has no profile, decide it from its rows)."""
        if row.narrowed or not row.profile or not tlp.in_scope(row.exercise_id, self._recipient):
            return None
        profile = orjson.loads(row.profile)
        addressing = addressing_of(row.distribution, row.sg_members)
        count = elements = 0
        stamps = [row.meta_timestamp or 0]
        whole = True
        for rank in range(5):
            if not profile["e"][rank]:
                continue
            if self.decide(max(rank, row.tlp_rank), addressing, row.orgc_uuid).allowed:
                count += profile["n"][rank]
                elements += profile["e"][rank]
                stamps.append(profile["t"][rank])
            else:
                whole = False
        if row.orgc_uuid == self._org:
            stamps.append(row.withdrawn_ts or 0)
        return Profiled(count, max(stamps), elements == 0, whole)


@dataclass(frozen=True, slots=True)
class Profiled:
    """What a recipient receives of an event, told by its profile."""

    count: int  # live attributes
    timestamp: int
    empty: bool
    whole: bool  # every live element


def own_addressing(
    parent: tlp.Addressing, distribution: int, sg_members: str | None
) -> tlp.Addressing:
    """An element's addressing: its parent's, narrowed by its own distribution/sharing group."""
    if distribution == INHERIT:
        return parent
    return parent.narrow(addressing_of(distribution, sg_members))

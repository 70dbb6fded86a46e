"""Who receives: an organisation as the registry describes it, and who asks on its behalf.

A delivery is made to an organisation, not to an API key: a request speaks for its key's
organisation (``of_principal``), a job for the partner it serves (``of_partner``), so no job
needs a key to reach the release path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import tlp
from hub.auth.principal import Principal

if TYPE_CHECKING:
    from hub.models import Partner


@dataclass(frozen=True, slots=True)
class Recipient:
    """The organisation a delivery goes to.

    Attributes:
        org_uuid: the organisation's uuid (its MISP organisation uuid).
        partner_id: its row in the registry.
        name: its name, as shown to itself.
        tier, status, tlp_accepted: what ``tlp.decide`` needs of it.
        actor: how the audit log names who asked (a key, a connection, a job).
        exercise_id: the exercise it receives for (an exercise-only key); None for real
            traffic. Items go only to recipients of their own exercise (``tlp.in_scope``).
    """

    org_uuid: str
    partner_id: int
    name: str
    tier: str | None
    status: str
    tlp_accepted: bool
    actor: str
    exercise_id: str | None = None

    @classmethod
    def of_principal(cls, principal: Principal) -> Recipient:
        return cls(
            org_uuid=principal.partner_uuid,
            partner_id=principal.partner_id,
            name=principal.partner_name,
            tier=principal.partner_tier,
            status=principal.partner_status,
            tlp_accepted=principal.tlp_accepted,
            actor=principal.actor,
            exercise_id=principal.exercise_id,
        )

    @classmethod
    def of_partner(
        cls, partner: Partner, *, actor: str, exercise_id: str | None = None
    ) -> Recipient:
        return cls(
            org_uuid=partner.uuid,
            partner_id=partner.id,
            name=partner.name,
            tier=partner.tier,
            status=partner.status,
            tlp_accepted=partner.tlp_accepted_at is not None,
            actor=actor,
            exercise_id=exercise_id,
        )

    @property
    def tlp(self) -> tlp.Recipient:
        """The recipient as ``tlp.decide`` sees it."""
        return tlp.Recipient(
            self.org_uuid,
            tier=self.tier,
            status=self.status,
            tlp_accepted=self.tlp_accepted,
            exercise=self.exercise_id,
        )


def as_recipient(who: Recipient | Principal) -> Recipient:
    """A request's principal or a recipient, as a recipient."""
    return who if isinstance(who, Recipient) else Recipient.of_principal(who)

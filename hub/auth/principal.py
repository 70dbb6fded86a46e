"""Who is calling: the key, its role and its organisation."""

from __future__ import annotations

from dataclasses import dataclass

from hub.vocabulary import Role


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    key_uuid: str
    role: Role
    partner_id: int
    partner_uuid: str
    partner_name: str
    partner_status: str
    partner_tier: str
    tlp_accepted: bool
    is_hub_org: bool
    stamp_due: bool = False  # the key's last-use stamp is older than its precision
    exercise_id: str | None = None  # an exercise-only key's exercise (None: real traffic)

    @property
    def scope(self) -> str:
        """Whose cursors these are: the organisation, and for an exercise-only key its
        exercise (a cursor handed out in one scope does not continue in the other)."""
        if self.exercise_id:
            return f"{self.partner_uuid}/exercise:{self.exercise_id}"
        return self.partner_uuid

    @property
    def actor(self) -> str:
        """How history and audit name this caller: the key and whose it is."""
        mode = f", exercise {self.exercise_id}" if self.exercise_id else ""
        return f"key:{self.key_uuid} ({self.partner_name}, {self.role.value}{mode})"

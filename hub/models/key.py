"""API keys: 40 alphanumeric characters, shown once, stored as a keyed hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.models.base import Base, UUIDMixin, utcnow
from hub.models.partner import Partner


class ApiKey(UUIDMixin, Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    # HMAC-SHA256 of the key under HUB_SECRET_KEY, hex; looked up by index.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The last four characters, as MISP shows them, so people can tell keys apart.
    key_hint: Mapped[str] = mapped_column(String(4))
    comment: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(255))
    last_used_at: Mapped[datetime | None]
    # An exercise-only key: it receives and submits only that exercise's items (None: real
    # traffic, never an exercise's).
    exercise_id: Mapped[str | None] = mapped_column(
        ForeignKey("exercises.uuid", ondelete="RESTRICT"), index=True
    )

    partner: Mapped[Partner] = relationship(lazy="raise")


class AuthThrottle(Base):
    """Failed authentications of one source address or one key hint, counted per window and
    shared by every API worker: past the limit, that address or hint is refused (429) until
    ``blocked_until``."""

    __tablename__ = "auth_throttle"

    scope: Mapped[str] = mapped_column(String(16), primary_key=True)  # address | hint
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime]
    failures: Mapped[int] = mapped_column(Integer)
    blocked_until: Mapped[datetime | None]

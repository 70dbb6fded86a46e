"""Issuing, listing, revoking and checking API keys."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.auth.keys import generate_key, hash_key, is_well_formed
from hub.auth.principal import Principal
from hub.context import current_request_id
from hub.errors import Conflict, InvalidField, NotFound, Unauthenticated
from hub.models import ApiKey, AuthThrottle, Partner
from hub.models.base import utcnow
from hub.vocabulary import PartnerStatus, Role

# Recording every use would turn each read into a write; a minute's precision is enough
# to answer "is this key still in use?".
LAST_USED_PRECISION = timedelta(minutes=1)
_DEAD_STATUSES = {PartnerStatus.SUSPENDED.value, PartnerStatus.WITHDRAWN.value}
HUB_ONLY_ROLES = {Role.OPERATOR, Role.AUDITOR}


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str
    record: ApiKey


def create_key(
    session: Session,
    *,
    partner: Partner,
    role: Role,
    secret: str,
    actor: str,
    expires_at: datetime | None = None,
    comment: str | None = None,
    exercise_id: str | None = None,
) -> IssuedKey:
    """Issue a key; the clear key is returned here and never stored or shown again.
    ``exercise_id``: an exercise-only key (the caller checks the partner takes part)."""
    if role in HUB_ONLY_ROLES and not partner.is_hub_org:
        raise InvalidField(
            f"role {role.value!r} is only for the hub's own organisation's staff",
            field="role",
        )
    if partner.status in _DEAD_STATUSES:
        raise Conflict(f"partner is {partner.status}; it cannot get new keys")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidField("expires_at is in the past", field="expires_at")
    key = generate_key()
    record = ApiKey(
        partner_id=partner.id,
        role=role.value,
        key_hash=hash_key(key, secret=secret),
        key_hint=key[-4:],
        comment=comment,
        created_by=actor,
        expires_at=expires_at,
        exercise_id=exercise_id,
    )
    session.add(record)
    session.flush()
    audit.append(
        session,
        [
            audit.Record(
                action="key.create",
                actor=actor,
                object_ref=f"key:{record.uuid}",
                request_id=current_request_id(),
                details={
                    "partner": partner.uuid,
                    "role": role.value,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
        ],
    )
    return IssuedKey(key=key, record=record)


def list_keys(session: Session, *, partner: Partner) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.partner_id == partner.id).order_by(ApiKey.id)
    return list(session.scalars(stmt))


def get_key(session: Session, *, key_uuid: str, partner: Partner | None = None) -> ApiKey:
    stmt = select(ApiKey).where(ApiKey.uuid == key_uuid)
    if partner is not None:
        stmt = stmt.where(ApiKey.partner_id == partner.id)
    record = session.scalar(stmt)
    if record is None:
        raise NotFound(f"no key {key_uuid}")
    return record


def revoke_key(session: Session, *, record: ApiKey, actor: str) -> ApiKey:
    """Revoke at once; revoking twice is harmless and keeps the first time."""
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        record.revoked_by = actor
        session.flush()
        audit.append(
            session,
            [
                audit.Record(
                    action="key.revoke",
                    actor=actor,
                    object_ref=f"key:{record.uuid}",
                    request_id=current_request_id(),
                    details={},
                )
            ],
        )
    return record


def operator_key_exists(session: Session) -> bool:
    stmt = select(ApiKey.id).where(ApiKey.role == Role.OPERATOR.value, ApiKey.revoked_at.is_(None))
    return session.scalar(stmt.limit(1)) is not None


# The one answer for a presented key that does not work, whatever the reason: a caller
# must not learn whether a key exists, was revoked, ran out or belongs to a suspended
# organisation (the reason goes to the metrics and the log).
NOT_VALID = "the API key is not valid"
MISSING = (
    "an API key is required: send it as 'Authorization: <key>', "
    "'Authorization: Bearer <key>' or 'X-MISP-AUTH: <key>'"
)


class KeyRefused(Unauthenticated):
    """A presented key that does not work; ``reason`` (malformed, unknown, revoked, expired,
    suspended) is for the metrics and the throttle, never for the caller."""

    def __init__(self, reason: str, detail: str = NOT_VALID) -> None:
        super().__init__(detail)
        self.reason = reason


class AddressBlocked(Exception):
    """The source address is blocked after too many failed authentications, until ``until``."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"blocked until {until.isoformat()}")
        self.until = until


_ADDRESS_BLOCK = (
    select(AuthThrottle.blocked_until)
    .where(
        AuthThrottle.scope == "address",
        AuthThrottle.subject == bindparam("address"),
        AuthThrottle.blocked_until > bindparam("now"),
    )
    .scalar_subquery()
)

_KEY_COLUMNS = select(
    ApiKey.id.label("key_id"),
    ApiKey.uuid.label("key_uuid"),
    ApiKey.key_hash,
    ApiKey.role,
    ApiKey.revoked_at,
    ApiKey.expires_at,
    ApiKey.last_used_at,
    ApiKey.exercise_id,
    Partner.id.label("partner_id"),
    Partner.uuid,
    Partner.name,
    Partner.status,
    Partner.tier,
    Partner.tlp_accepted_at,
    Partner.is_hub_org,
    _ADDRESS_BLOCK.label("address_blocked_until"),
).join(Partner, Partner.id == ApiKey.partner_id)
_KEY_LOOKUP = _KEY_COLUMNS.where(ApiKey.key_hash == bindparam("digest"))
_KEY_BY_UUID = _KEY_COLUMNS.where(ApiKey.uuid == bindparam("key_uuid"))


def authenticate(
    session: Session, *, key: str | None, secret: str, address: str | None = None
) -> Principal:
    """The caller behind ``key``; reads only (the last-use stamp is ``stamp_last_use``'s).

    Raises Unauthenticated for no key, KeyRefused for a key that does not work (never
    saying which keys exist), AddressBlocked for a working key from a blocked address.
    """
    if not key:
        raise Unauthenticated(MISSING, headers={"WWW-Authenticate": "Bearer"})
    if not is_well_formed(key):
        raise KeyRefused(
            "malformed", "the API key is malformed: it must be 40 characters [A-Za-z0-9]"
        )
    digest = hash_key(key, secret=secret)
    now = utcnow()
    # One statement (Core, not ORM entities: this runs on every request, see the benchmark
    # S2 and S5): the key, its organisation and whether the caller's address is blocked.
    row = (
        session.connection()
        .execute(_KEY_LOOKUP, {"digest": digest, "address": address, "now": now})
        .first()
    )
    # The index lookup finds the row; the constant-time comparison is the actual check.
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        raise KeyRefused("unknown")
    return _principal(row, now)


def principal_of_key(session: Session, *, key_uuid: str, address: str | None = None) -> Principal:
    """The caller behind a key already checked once (a console session names its key):
    the same checks as ``authenticate`` at every use, so revoking the key, its running out
    or its organisation's suspension ends the session at once."""
    now = utcnow()
    row = (
        session.connection()
        .execute(_KEY_BY_UUID, {"key_uuid": key_uuid, "address": address, "now": now})
        .first()
    )
    if row is None:
        raise KeyRefused("unknown")
    return _principal(row, now)


def _principal(row: Any, now: datetime) -> Principal:
    if row.address_blocked_until is not None:
        raise AddressBlocked(row.address_blocked_until)
    if row.revoked_at is not None:
        raise KeyRefused("revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise KeyRefused("expired")
    if row.status in _DEAD_STATUSES:
        raise KeyRefused(row.status)
    return Principal(
        key_id=row.key_id,
        key_uuid=row.key_uuid,
        role=Role(row.role),
        partner_id=row.partner_id,
        partner_uuid=row.uuid,
        partner_name=row.name,
        partner_status=row.status,
        partner_tier=row.tier,
        tlp_accepted=row.tlp_accepted_at is not None,
        is_hub_org=row.is_hub_org,
        stamp_due=row.last_used_at is None or now - row.last_used_at >= LAST_USED_PRECISION,
        exercise_id=row.exercise_id,
    )


def stamp_last_use(session: Session, principal: Principal) -> None:
    """Record that the key was used (minute precision: most requests write nothing here)."""
    if principal.stamp_due:
        session.execute(
            update(ApiKey).where(ApiKey.id == principal.key_id).values(last_used_at=utcnow())
        )

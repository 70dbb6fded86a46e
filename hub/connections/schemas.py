"""Request and response bodies for /api/v1/admin/connections (credentials are write-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors import ConnectorKind


class Credentials(BaseModel):
    """A MISP or TAXII key, or a TAXII user and password."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None

    def plain(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.api_key is not None:
            out["api_key"] = self.api_key.get_secret_value()
        if self.username is not None:
            out["username"] = self.username
        if self.password is not None:
            out["password"] = self.password.get_secret_value()
        return out


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    kind: ConnectorKind
    url: str = Field(min_length=8, max_length=2000)
    partner: str = Field(description="owner: partner uuid or name (the hub's own org for its MISP)")
    credentials: Credentials
    interval_seconds: int = Field(default=3600, ge=10, le=7 * 86400)
    filters: dict[str, Any] = Field(
        default_factory=dict,
        description="MISP pull: tags, orgs, published, since; TAXII: collection, types, page_size",
    )
    enabled: bool = True
    verify_tls: bool = True
    exercise: str | None = Field(
        default=None,
        description="exercise mode (misp-push only): the exercise uuid whose items alone it "
        "pushes, marked; the owner must take part in it. Never carries real traffic.",
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("the URL must start with http:// or https://")
        return value


class ConnectionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    credentials: Credentials | None = None
    interval_seconds: int | None = Field(default=None, ge=10, le=7 * 86400)
    filters: dict[str, Any] | None = None
    enabled: bool | None = None
    verify_tls: bool | None = None


class ConnectionRead(BaseModel):
    uuid: str
    name: str
    kind: ConnectorKind
    url: str
    partner_uuid: str
    partner_name: str
    interval_seconds: int
    filters: dict[str, Any]
    enabled: bool
    verify_tls: bool
    cursor: dict[str, Any]
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    credentials_set: list[str]
    exercise: str | None = None  # exercise mode: the exercise it pushes for


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    uuid: str
    trigger: str
    state: str
    attempts: int
    run_after: datetime
    last_error: str | None
    stats: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    claimed_by: str | None = Field(default=None, description="the worker running it now")
    lease_until: datetime | None = None


class RequeueReport(BaseModel):
    """What a requeue put back: the run that will go, and how many dead pushes."""

    job: JobRead
    pushes_requeued: int


class TestReport(BaseModel):
    ok: bool
    report: str
    remote: dict[str, Any] | None = None

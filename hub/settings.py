"""Configuration from the environment (``HUB_`` prefix); the only module that reads it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SECRET = "insecure-development-secret-change-me"
DEFAULT_DATABASE_URL = "sqlite:///./var/hub.db"


class SettingsError(Exception):
    """The configuration cannot be used (for example production mode with a default secret)."""


class Settings(BaseSettings):
    """Every knob of the hub, named as in DESIGN.md's contract."""

    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET)
    production: bool = False
    allow_sqlite: bool = False
    public_url: str | None = None
    org_name: str = Field(default="NCSC-NL", min_length=1, max_length=200)
    misp_version: str = "2.5.1"
    # The distribution of a submitted event that has none (MISP's default_event_distribution;
    # 1 = the community, DESIGN.md §3).
    default_distribution: int = Field(default=1, ge=0, le=3)
    max_body_bytes: int = Field(default=200 * 1024 * 1024, gt=0)
    notify_interval_seconds: int = Field(default=300, ge=0)
    notify_expire_days: int = Field(default=30, ge=1)
    # E-mail delivery of notifications: no host, no e-mail (REST only).
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    smtp_from: str = Field(default="cwn-hub@localhost", min_length=3, max_length=320)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=30, gt=0)
    # The audit log's signed checkpoints: the Ed25519 signer key (a file `hub audit keygen`
    # writes; never in the database), and how often the worker signs while the log grows.
    # The API publishes the verifier key: HUB_AUDIT_VERIFIER_KEY, else the key file's.
    audit_signing_key_file: Path | None = None
    audit_verifier_key: str | None = None
    checkpoint_interval_seconds: int = Field(default=60, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, gt=0, lt=65536)
    log_level: str = "INFO"
    log_json: bool = True
    # Database connections of one API process; request threads are as many (DESIGN §4 rule
    # 10: a request waits for a thread on the event loop, never for a connection in a thread).
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    db_pool_timeout_seconds: float = Field(default=5, gt=0)  # then 503 with Retry-After
    db_statement_timeout_seconds: float = Field(default=30, ge=0)  # PostgreSQL; 0 = none
    db_busy_timeout_seconds: float = Field(default=5, ge=0)  # SQLite: wait for the write lock
    # A MISP submission body of at least this many bytes is parsed, validated and drafted in
    # a process of its own, not in the API process's GIL (hub.intel.offload); 0: never.
    ingest_offload_bytes: int = Field(default=1_048_576, ge=0)
    ingest_offload_processes: int = Field(default=1, ge=1, le=64)
    # An event of at least this many attributes is released to a REST caller (MISP JSON) by
    # that process pool, not in the API process's GIL (hub.sharing.rendered); 0: never.
    render_offload_attributes: int = Field(default=20_000, ge=0)
    # Failed authentication: after this many failures within the window, of one presented
    # key, of keys that name nothing from one source address, or with one key hint, 429 for
    # the block time (hub.auth.throttle).
    auth_key_failure_limit: int = Field(default=20, ge=1)
    auth_failure_limit: int = Field(default=200, ge=1)
    auth_hint_failure_limit: int = Field(default=100, ge=1)
    auth_failure_window_seconds: int = Field(default=600, ge=1)
    auth_block_seconds: int = Field(default=900, ge=1)
    # The public "who helps me now" route (no key): requests per source address per window.
    public_help_limit: int = Field(default=30, ge=1)
    public_help_window_seconds: int = Field(default=60, ge=1)
    # Host names this hub answers to besides HUB_PUBLIC_URL's (production only; e.g. the
    # name a load balancer's health check uses). Comma-separated.
    trusted_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Connections to outside systems: private address ranges only when allowed; loopback
    # only in development (tests run remote servers on 127.0.0.1).
    connections_allow_private: bool = False
    connections_allow_loopback: bool = False

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @field_validator("trusted_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return [h.strip().lower() for h in value.split(",") if h.strip()]
        return value

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """Host names (without port) requests may name: HUB_PUBLIC_URL's and HUB_TRUSTED_HOSTS."""
        hosts = {h.lower() for h in self.trusted_hosts}
        if self.public_url:
            name = urlsplit(self.public_url).hostname
            if name:
                hosts.add(name.lower())
        return frozenset(hosts)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def secret(self) -> str:
        """The hub secret in clear (key hashing, sealed credentials, signed cursors, cookies)."""
        return self.secret_key.get_secret_value()

    def check(self) -> None:
        """Refuse configurations that are unsafe in production; raise SettingsError saying why."""
        if not self.production:
            return
        problems = []
        if self.secret_key.get_secret_value() == DEFAULT_SECRET:
            problems.append("HUB_SECRET_KEY is the development default; set a long random secret")
        elif len(self.secret_key.get_secret_value()) < 32:
            problems.append("HUB_SECRET_KEY is shorter than 32 characters")
        if self.is_sqlite and not self.allow_sqlite:
            problems.append(
                "HUB_DATABASE_URL is SQLite; use PostgreSQL or set HUB_ALLOW_SQLITE=true"
            )
        if not self.public_url:
            problems.append(
                "HUB_PUBLIC_URL is not set; URLs the hub hands out must not come from the "
                "Host header a client sent"
            )
        elif (
            urlsplit(self.public_url).scheme not in ("http", "https")
            or not urlsplit(self.public_url).hostname
        ):
            problems.append("HUB_PUBLIC_URL must be an absolute http(s) URL")
        if self.connections_allow_loopback:
            problems.append("HUB_CONNECTIONS_ALLOW_LOOPBACK is for development and tests only")
        if problems:
            raise SettingsError("refusing to start in production mode: " + "; ".join(problems))

    def sqlite_path(self) -> Path | None:
        """The database file for a file-based SQLite URL, else None."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split(":///", 1)[-1].split("?", 1)[0]
        if not path or path == ":memory:":
            return None
        return Path(path)


@lru_cache
def get_settings() -> Settings:
    return Settings()

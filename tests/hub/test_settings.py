"""Production mode refuses unsafe settings."""

from __future__ import annotations

import pytest

from hub.main import create_app
from hub.settings import DEFAULT_SECRET, Settings, SettingsError

PG = "postgresql+psycopg://hub@db.example/hub"
SECRET = "s" * 48
PUBLIC = "https://hub.example"


def test_development_defaults() -> None:
    s = Settings(_env_file=None)
    assert s.database_url == "sqlite:///./var/hub.db"
    assert s.org_name == "NCSC-NL" and s.misp_version == "2.5.1"
    s.check()  # development mode accepts the defaults


def test_reads_the_hub_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_ORG_NAME", "CSIRT-X")
    monkeypatch.setenv("HUB_NOTIFY_INTERVAL_SECONDS", "0")
    monkeypatch.setenv("HUB_PUBLIC_URL", "https://hub.example/")
    s = Settings()
    assert (s.org_name, s.notify_interval_seconds, s.public_url) == (
        "CSIRT-X",
        0,
        "https://hub.example",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"database_url": PG, "public_url": PUBLIC}, "HUB_SECRET_KEY"),
        (
            {"database_url": PG, "secret_key": DEFAULT_SECRET, "public_url": PUBLIC},
            "HUB_SECRET_KEY",
        ),
        ({"database_url": PG, "secret_key": "short", "public_url": PUBLIC}, "32"),
        ({"secret_key": SECRET, "public_url": PUBLIC}, "SQLite"),
        ({"database_url": PG, "secret_key": SECRET}, "HUB_PUBLIC_URL is not set"),
        ({"database_url": PG, "secret_key": SECRET, "public_url": "hub.example"}, "absolute"),
        (
            {
                "database_url": PG,
                "secret_key": SECRET,
                "public_url": PUBLIC,
                "connections_allow_loopback": True,
            },
            "HUB_CONNECTIONS_ALLOW_LOOPBACK",
        ),
    ],
)
def test_production_refuses(kwargs: dict, message: str) -> None:
    s = Settings(production=True, **kwargs)
    with pytest.raises(SettingsError, match=message):
        s.check()
    with pytest.raises(SettingsError):
        create_app(s)


def test_production_accepts_sqlite_when_explicitly_allowed() -> None:
    Settings(production=True, secret_key=SECRET, allow_sqlite=True, public_url=PUBLIC).check()
    Settings(production=True, secret_key=SECRET, database_url=PG, public_url=PUBLIC).check()


def test_trusted_hosts_come_from_the_public_url_and_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HUB_TRUSTED_HOSTS", "Hub-Internal.example, 10.0.0.5")
    s = Settings(public_url="https://hub.example:8443/base")
    assert s.allowed_hosts == {"hub.example", "hub-internal.example", "10.0.0.5"}

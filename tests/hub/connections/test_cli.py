"""`hub connection add|list|test|run|update|requeue` against a live remote (a second hub's /misp)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.db import session_scope
from hub.models import ConnectionJob, Event, Partner
from tests.builders import event
from tests.hub import test_cli
from tests.hub.connections.conftest import Remote

hub = test_cli.hub  # the in-process `hub` runner on the test database


@pytest.fixture(autouse=True)
def _loopback_remote(monkeypatch: pytest.MonkeyPatch) -> None:
    """The remote listens on 127.0.0.1 (a development-only allowance)."""
    monkeypatch.setenv("HUB_CONNECTIONS_ALLOW_LOOPBACK", "true")


def _events_held(maker: sessionmaker[Session]) -> set[str]:
    with session_scope(maker, write=False) as session:
        return set(session.scalars(select(Event.uuid)))


def _add(hub: Any, remote: Remote, partner: Partner, *args: str, ok: bool = True) -> Any:
    return hub(
        *("connection", "add", "--url", remote.misp_url, "--partner", partner.uuid),
        *args,
        ok=ok,
    )


def test_add_list_test_and_run_with_the_worker(
    hub: Any, remote: Remote, upstream: Partner, maker: sessionmaker[Session]
) -> None:
    events = [event(f"cli {i}", tlp="green", distribution=3) for i in range(2)]
    remote.add_events(events)
    added = _add(
        hub, remote, upstream, "--name", "upstream", "--kind", "misp-pull", "--api-key", remote.key
    )
    assert remote.key not in added.output
    conn_uuid = added.output.strip()
    assert len(conn_uuid) == 36

    listed = hub("connection", "list").output
    assert conn_uuid in listed and "misp-pull" in listed and "upstream" in listed
    assert remote.key not in listed and "last success never" in listed

    tested = hub("connection", "test", "upstream").output
    assert "MISP 2.5.1" in tested and "may sync" in tested, tested

    assert "queued" in hub("connection", "run", "upstream", "--queue-only").output
    assert _events_held(maker) == set()
    worked = hub("worker", "--once").output
    assert "connection-jobs 2" in worked, worked  # the index, then the events
    assert _events_held(maker) == {e["Event"]["uuid"] for e in events}
    with session_scope(maker, write=False) as session:
        states = list(session.scalars(select(ConnectionJob.state)))
    assert states == ["done"]

    again = hub("connection", "run", conn_uuid).output  # run here and now, to the end
    assert again.startswith("done:") and "held" in again and "stored" not in again, again
    assert "last success 20" in hub("connection", "list").output


def test_bad_input_exits_non_zero_naming_the_field(
    hub: Any, remote: Remote, upstream: Partner, maker: sessionmaker[Session]
) -> None:
    base = ("--name", "x", "--api-key", remote.key)
    cases = {
        ("--kind", "ftp-pull"): "kind",
        ("--kind", "misp-pull", "--filters", "{not json"): "--filters is not JSON",
        ("--kind", "taxii-pull"): "filters",  # a TAXII connection needs a collection
        ("--kind", "misp-pull", "--interval", "1"): "interval_seconds",
        ("--kind", "misp-pull", "--filters", '{"tags": "tlp:green"}'): "filters",
    }
    for args, field in cases.items():
        result = _add(hub, remote, upstream, *base, *args, ok=False)
        assert result.exit_code != 0 and field in result.output, (args, result.output)
    bad_url = hub(
        *("connection", "add", "--url", "ftp://x.example/", "--partner", upstream.uuid),
        *("--kind", "misp-pull", *base),
        ok=False,
    )
    assert bad_url.exit_code != 0 and "url" in bad_url.output
    nobody = hub(
        *("connection", "add", "--url", remote.misp_url, "--partner", "No Such CSIRT"),
        *("--kind", "misp-pull", *base),
        ok=False,
    )
    assert nobody.exit_code != 0 and "No Such CSIRT" in nobody.output
    assert "no connection 'ghost'" in hub("connection", "run", "ghost", ok=False).output
    with session_scope(maker, write=False) as session:  # nothing half-written
        assert session.scalar(select(func.count(ConnectionJob.id))) == 0
    assert "upstream" not in hub("connection", "list").output


def test_wrong_key_dead_then_fixed_and_requeued(
    hub: Any,
    remote: Remote,
    upstream: Partner,
    maker: sessionmaker[Session],
) -> None:
    events = [event("after the fix", tlp="green", distribution=3)]
    remote.add_events(events)
    _add(hub, remote, upstream, "--name", "upstream", "--kind", "misp-pull", "--api-key", "q" * 40)
    report = hub("connection", "test", "upstream", ok=False)
    assert report.exit_code != 0 and "refused the key (401" in report.output
    assert "no dead run" in hub("connection", "requeue", "upstream", ok=False).output
    failed = hub("connection", "run", "upstream", ok=False)
    assert failed.exit_code != 0 and "failed:" in failed.output and "401" in failed.output
    assert "last error:" in hub("connection", "list").output

    nothing = hub("connection", "update", "upstream", ok=False)
    assert nothing.exit_code != 0 and "nothing to change" in nothing.output
    too_often = hub("connection", "update", "upstream", "--interval", "1", ok=False)
    assert too_often.exit_code != 0 and "interval_seconds" in too_often.output
    fixed = hub("connection", "update", "upstream", "--api-key", remote.key)
    assert "updated upstream: credentials" in fixed.output and remote.key not in fixed.output
    assert "requeued run" in hub("connection", "requeue", "upstream").output
    assert "done:" in hub("connection", "run", "upstream").output
    assert _events_held(maker) == {events[0]["Event"]["uuid"]}

"""`hub exercise`: run an exercise (OTO) on the live hub: create it, add participants,
issue exercise-only keys, load a scenario, send injects, close, report.

A scenario file (JSON or YAML)::

    {"name": "Ransomware at hospital X", "participants": ["Z-CERT", "<uuid>"],
     "match_real_constituencies": false,
     "targets": {"Z-CERT": {"ip_prefixes": ["192.0.2.0/24"], "domains": ["hospital-x.example"]}},
     "starts_at": "2026-12-10T09:00:00Z", "ends_at": "2026-12-10T17:00:00Z",
     "injects": [{"name": "IOC drop", "event": "injects/ioc.json",
                  "send_at": "2026-12-10T09:30:00Z"},
                 {"name": "by hand", "event": "injects/second.json"}]}

Each inject's ``event`` is a MISP event file (relative to the scenario file) or the event
itself; ``send_at`` absent means by hand (``hub exercise inject``).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from hub.cli.common import actor, dump, fail, runtime, unit_of_work
from hub.vocabulary import Role

group = typer.Typer(help="Exercises: isolated practice on the live hub.", no_args_is_help=True)

ExerciseRef = Annotated[str, typer.Argument(help="the exercise's uuid")]


def _when(text: str | None, field: str) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"{field}: {text!r} is not an ISO 8601 time", 2) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _read_doc(path: Path) -> Any:
    raw = path.read_bytes()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as err:
            raise fail(f"{path.name}: not YAML ({err})".splitlines()[0], 2) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise fail(f"{path.name}: not JSON ({err})", 2) from None


@group.command("create")
def create(
    name: Annotated[str, typer.Option(help="the exercise's name")],
    participant: Annotated[
        list[str] | None, typer.Option(help="partner uuid or name (repeat)")
    ] = None,
    starts_at: Annotated[str | None, typer.Option(help="ISO 8601")] = None,
    ends_at: Annotated[str | None, typer.Option(help="ISO 8601")] = None,
    match_real_constituencies: Annotated[
        bool, typer.Option(help="also notify through the participants' real constituencies")
    ] = False,
) -> None:
    """Create an exercise; prints its uuid."""
    from hub.exercises import service

    with unit_of_work() as session:
        exercise = service.create(
            session,
            name=name,
            actor=actor(),
            starts_at=_when(starts_at, "starts_at"),
            ends_at=_when(ends_at, "ends_at"),
            match_real_constituencies=match_real_constituencies,
            participants=participant or [],
        )
        uuid = exercise.uuid
    sys.stdout.write(uuid + "\n")


@group.command("add-participant")
def add_participant(exercise: ExerciseRef, partner: Annotated[str, typer.Argument()]) -> None:
    """Add a partner (uuid or name) to the exercise."""
    from hub.exercises import service

    with unit_of_work() as session:
        service.add_participant(
            session, service.get(session, exercise), partner_ref=partner, actor=actor()
        )


@group.command("key")
def key(
    exercise: ExerciseRef,
    partner: Annotated[str, typer.Argument(help="a participant's uuid or name")],
    role: Annotated[Role, typer.Option(help="partner or sync")] = Role.PARTNER,
) -> None:
    """Issue an exercise-only key for a participant; prints only the key."""
    from hub.exercises import service

    if role not in (Role.PARTNER, Role.SYNC):
        raise fail("an exercise key is a partner or sync key", 2)
    with runtime() as rt, unit_of_work(rt) as session:
        issued, _partner = service.create_key(
            session,
            service.get(session, exercise),
            partner_ref=partner,
            role=role,
            actor=actor(),
            secret=rt.secret,
        )
    sys.stdout.write(issued.key + "\n")


@group.command("load")
def load(
    scenario: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Create an exercise from a scenario file with its participants and injects; prints
    its uuid. Injects with a time are sent by ``hub exercise send-due``."""
    from hub.exercises import service

    doc = _read_doc(scenario)
    if not isinstance(doc, dict) or not doc.get("name"):
        raise fail("a scenario is an object with a name", 2)
    injects = []
    for i, item in enumerate(doc.get("injects") or []):
        event = item.get("event") if isinstance(item, dict) else None
        if isinstance(event, str):
            event = _read_doc(scenario.parent / event)
        if not isinstance(event, dict):
            raise fail(f"injects.{i}.event: a MISP event or the file of one", 2)
        injects.append((str(item.get("name") or f"inject {i + 1}"), event, item.get("send_at")))
    targets = _targets(doc.get("targets"))
    with unit_of_work() as session:
        exercise = service.create(
            session,
            targets=targets,
            name=str(doc["name"]),
            actor=actor(),
            starts_at=_when(doc.get("starts_at"), "starts_at"),
            ends_at=_when(doc.get("ends_at"), "ends_at"),
            description=doc.get("description"),
            match_real_constituencies=bool(doc.get("match_real_constituencies", False)),
            participants=list(doc.get("participants") or []),
        )
        for i, (name, event, send_at) in enumerate(injects):
            service.add_inject(
                session,
                exercise,
                name=name,
                event=event,
                send_at=_when(send_at, f"injects.{i}.send_at"),
            )
        uuid = exercise.uuid
    sys.stdout.write(uuid + "\n")


def _targets(found: Any) -> dict[str, Any]:
    """The scenario's fictional constituents per participant, checked as a partner's
    constituency is."""
    from pydantic import ValidationError

    from hub.partners.schemas import Constituency

    if found is None:
        return {}
    if not isinstance(found, dict):
        raise fail("targets: participant name or uuid → {ip_prefixes, asns, domains, sectors}", 2)
    out = {}
    for ref, body in found.items():
        try:
            out[str(ref)] = Constituency.model_validate(body or {})
        except ValidationError as err:
            raise fail(f"targets.{ref}: {str(err).splitlines()[-2].strip()}", 2) from None
    return out


@group.command("inject")
def inject(
    exercise: ExerciseRef,
    inject_id: Annotated[int | None, typer.Option("--id", help="a loaded inject's number")] = None,
    file: Annotated[Path | None, typer.Option(help="a MISP event file to send now")] = None,
) -> None:
    """Send an inject now: a loaded one (``--id``) or a MISP event file; prints its uuid."""
    from hub.exercises import service
    from hub.models import ExerciseInject

    if (inject_id is None) == (file is None):
        raise fail("give --id or --file", 2)
    with runtime() as rt, unit_of_work(rt) as session:
        found = service.get(session, exercise)
        if file is not None:
            item = service.add_inject(
                session, found, name=file.name, event=_read_doc(file), send_at=None
            )
        else:
            item = session.get(ExerciseInject, inject_id)
            if item is None or item.exercise_id != found.id:
                raise fail(f"exercise {exercise} has no inject {inject_id}")
        uuid = service.send_inject(session, found, item, actor=actor(), policy=rt.policy)
    sys.stdout.write(uuid + "\n")


@group.command("send-due")
def send_due() -> None:
    """Send every inject whose time has come; prints how many."""
    from hub.exercises import service

    with runtime() as rt, unit_of_work(rt) as session:
        count = service.send_due(session, now=datetime.now(UTC), actor=actor(), policy=rt.policy)
    typer.echo(str(count))


@group.command("close")
def close(
    exercise: ExerciseRef, reason: Annotated[str, typer.Option()] = "exercise closed"
) -> None:
    """Freeze the exercise and withdraw its items from every participant's view."""
    from hub.exercises import service

    with runtime() as rt, unit_of_work(rt) as session:
        count = service.close(
            session, service.get(session, exercise), actor=actor(), reason=reason, policy=rt.policy
        )
    typer.echo(f"closed; {count} item(s) withdrawn")


@group.command("report")
def report(
    exercise: ExerciseRef,
    csv: Annotated[bool, typer.Option("--csv", help="CSV instead of JSON")] = False,
    late_after: Annotated[int, typer.Option(help="seconds after sending that count as late")] = 900,
) -> None:
    """The after-action report."""
    from hub.exercises import report as reports
    from hub.exercises import service

    with unit_of_work() as session:
        found = service.get(session, exercise)
        if csv:
            typer.echo(
                reports.to_csv(reports.lines(session, found, late_after=late_after)), nl=False
            )
        else:
            dump(reports.report(session, found, late_after=late_after))

"""`hub incidents`: the incident support registry and the reporting-obligation table, for
operators at the command line (the same services and checks as the REST admin routes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar

import orjson
import typer
from pydantic import BaseModel, ValidationError

from hub.cli.common import actor, dump, fail, unit_of_work
from hub.vocabulary import Sector

T = TypeVar("T", bound=BaseModel)

group = typer.Typer(help="Incident handling: support registry, reporting obligations.")


def _load(model: type[T], path: Path) -> T:
    """A JSON file validated as ``model``; a bad one exits 2 naming the field."""
    try:
        return model.model_validate(orjson.loads(path.read_bytes()))
    except OSError as err:
        raise fail(f"{path}: {err.strerror}", 2) from None
    except orjson.JSONDecodeError as err:
        raise fail(f"{path}: not JSON ({err})", 2) from None
    except ValidationError as err:
        first = err.errors()[0]
        raise fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", 2) from None


@group.command("support-set")
def support_set(
    partner: Annotated[str, typer.Argument(help="partner uuid or name")],
    file: Annotated[Path, typer.Option("--file", help="the entry as JSON (the REST body)")],
) -> None:
    """Set the incident support a partner offers (kept in its history and the audit log)."""
    from hub.incidents import service
    from hub.incidents.schemas import IncidentSupportBody
    from hub.partners import service as partners

    body = _load(IncidentSupportBody, file)
    with unit_of_work() as session:
        owner = partners.get(session, ref=partner)
        row = service.put_support(session, partner=owner, body=body, actor=actor())
        dump(service.support_read(owner, row).model_dump(mode="json"))


@group.command("support-show")
def support_show(partner: Annotated[str, typer.Argument(help="partner uuid or name")]) -> None:
    """The incident support a partner offers."""
    from hub.incidents import service
    from hub.partners import service as partners

    with unit_of_work() as session:
        owner = partners.get(session, ref=partner)
        row = service.get_support(session, partner=owner)
        dump(service.support_read(owner, row).model_dump(mode="json"))


@group.command("obligations")
def obligations(
    sector: Annotated[Sector | None, typer.Option("--sector", help="one sector only")] = None,
) -> None:
    """The legal reporting obligations per sector."""
    from hub.incidents import repository, service

    with unit_of_work() as session:
        rows = repository.obligations(session, sector=sector.value if sector else None)
        dump([service.obligation_read(r).model_dump(mode="json") for r in rows])


@group.command("obligations-set")
def obligations_set(
    sector: Annotated[Sector, typer.Argument(help="the sector whose steps are replaced")],
    file: Annotated[Path, typer.Option("--file", help='{"obligations": [...]} as JSON')],
) -> None:
    """Replace a sector's reporting steps (audited, old → new)."""
    from hub.incidents import service
    from hub.incidents.schemas import SectorObligations

    body = _load(SectorObligations, file)
    with unit_of_work() as session:
        rows = service.replace_obligations(session, sector=sector, body=body, actor=actor())
        dump([service.obligation_read(r).model_dump(mode="json") for r in rows])


@group.command("to-knowledge")
def to_knowledge(
    case: Annotated[str, typer.Argument(help="the closed incident case's uuid")],
    kind: Annotated[str, typer.Option("--kind", help="best-practice or analysis")] = (
        "best-practice"
    ),
    tlp_label: Annotated[
        str | None, typer.Option("--tlp", help="the case's label or stricter (default its own)")
    ] = None,
    title: Annotated[str | None, typer.Option("--title")] = None,
    name_opener: Annotated[
        bool, typer.Option("--name-opener", help="credit the case's opener by name")
    ] = False,
) -> None:
    """Turn a closed case's lessons learned into a knowledge product draft of the hub's own
    organisation (as an operator would); it then goes through review and publication."""
    from hub.auth.principal import Principal
    from hub.cli.common import runtime
    from hub.errors import Forbidden
    from hub.incidents import cases
    from hub.knowledge import lessons
    from hub.knowledge import views as knowledge_views
    from hub.partners import repository as partner_rows
    from hub.vocabulary import Role

    with runtime() as rt, unit_of_work(rt) as session:
        org = partner_rows.hub_org(session)
        if org is None:
            raise Forbidden("the hub's own organisation does not exist yet; run `hub init`")
        who = Principal(
            key_id=0,
            key_uuid=actor(),
            role=Role.OPERATOR,
            partner_id=org.id,
            partner_uuid=org.uuid,
            partner_name=org.name,
            partner_status=org.status,
            partner_tier=org.tier,
            tlp_accepted=org.tlp_accepted_at is not None,
            is_hub_org=True,
        )
        found = cases.visible(session, who=who, uuid=case, policy=rt.policy)
        given = cases.lessons_of(session, who=who, case=found, policy=rt.policy)
        product = lessons.draft_from_case(
            session,
            who=who,
            owner=org,
            case=lessons.CaseLessons(**given),
            kind=kind,
            label=tlp_label,
            title=title,
            name_opener=name_opener,
            policy=rt.policy,
        )
        dump(knowledge_views.owner_view(session, product))

"""`hub partner` and `hub key`: the partner registry and API keys."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from hub.auth import service as keys
from hub.cli.common import actor, dump, fail, runtime, unit_of_work
from hub.partners import importer
from hub.partners import service as partners
from hub.partners.schemas import PartnerCreate
from hub.vocabulary import (
    LegalStatus,
    NetworkFunction,
    PartnerStatus,
    PartnerType,
    Region,
    Role,
    Sector,
    Tier,
)

partner_group = typer.Typer(help="The partner registry.", no_args_is_help=True)
key_group = typer.Typer(help="API keys.", no_args_is_help=True)


@partner_group.command("add")
def partner_add(
    name: Annotated[str, typer.Option(help="organisation name")],
    type: Annotated[PartnerType, typer.Option(help="partner type")],
    tier: Annotated[Tier, typer.Option(help="network tier")],
    region: Annotated[Region, typer.Option(help="region")],
    sector: Annotated[list[Sector] | None, typer.Option(help="sector (repeatable)")] = None,
    function: Annotated[
        list[NetworkFunction] | None, typer.Option(help="network function (repeatable)")
    ] = None,
    legal_status: Annotated[LegalStatus, typer.Option()] = LegalStatus.NONE,
    tlp_accepted: Annotated[
        bool, typer.Option("--tlp-accepted", help="it accepted the TLP rules today")
    ] = False,
    uuid: Annotated[str | None, typer.Option(help="use this uuid (e.g. its MISP org uuid)")] = None,
) -> None:
    """Register a partner (a prospect); prints its uuid."""
    from pydantic import ValidationError

    try:
        data = PartnerCreate(
            uuid=uuid,
            name=name,
            type=type,
            tier=tier,
            region=region,
            legal_status=legal_status,
            sectors=sector or [],
            functions=function or [],
            tlp_accepted_at=datetime.now().astimezone() if tlp_accepted else None,
        )
    except ValidationError as err:
        first = err.errors()[0]
        raise fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", 2) from None
    with unit_of_work() as session:
        partner = partners.create(session, data=data, actor=actor())
        uuid_out = partner.uuid
    typer.echo(uuid_out)


@partner_group.command("list")
def partner_list(
    tier: Tier | None = None,
    type: PartnerType | None = None,
    sector: Sector | None = None,
    function: NetworkFunction | None = None,
    region: Region | None = None,
    status: PartnerStatus | None = None,
    json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """List partners, filtered."""
    from hub.partners import repository

    with unit_of_work() as session:
        stmt = repository.filtered(
            tier=tier, type=type, sector=sector, function=function, region=region, status=status
        )
        rows = [partners.to_read(p) for p in repository.page(session, stmt, limit=100_000)]
    for row in rows:
        if json:
            typer.echo(row.model_dump_json())
        else:
            typer.echo(
                f"{row.uuid}  {row.status.value:<10} {row.tier.value:<10} "
                f"{row.type.value:<20} {row.name}"
            )


@partner_group.command("show")
def partner_show(ref: Annotated[str, typer.Argument(help="uuid or name")]) -> None:
    """Show one partner as JSON."""
    with unit_of_work() as session:
        data = partners.to_read(partners.get(session, ref=ref)).model_dump(mode="json")
    dump(data)


@partner_group.command("set-status")
def partner_set_status(
    ref: Annotated[str, typer.Argument(help="uuid or name")],
    status: PartnerStatus,
    reason: Annotated[str | None, typer.Option(help="required for suspended and withdrawn")] = None,
) -> None:
    """Move a partner along its lifecycle."""
    with unit_of_work() as session:
        partner = partners.get(session, ref=ref)
        partners.change_status(
            session, partner=partner, status=status, reason=reason, actor=actor()
        )
        typer.echo(f"{partner.uuid} {partner.status}")


@partner_group.command("import")
def partner_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="import the good rows, report the bad ones")
    ] = False,
) -> None:
    """Import partners from CSV or JSON (idempotent by uuid or name); all or nothing."""
    with unit_of_work() as session:
        rows = importer.read_rows(file)
        report = importer.import_partners(
            session,
            rows=rows,
            actor=actor(),
            skip_invalid=skip_invalid,
            csv_names=file.suffix.lower() != ".json"
            and file.read_bytes().lstrip()[:1] not in (b"[", b"{"),
        )
        if not report.written:
            session.rollback()
    for error in report.errors:
        typer.echo(f"{file.name}: {error}", err=True)
    if not report.written:
        raise fail(
            f"{len(report.errors)} bad row(s); nothing was imported "
            "(fix them, or use --skip-invalid to import the rest)"
        )
    typer.echo(
        f"created {len(report.created)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}, skipped {len(report.errors)}"
    )


@key_group.command("create")
def key_create(
    partner: Annotated[str, typer.Option(help="partner uuid or name")],
    role: Annotated[Role, typer.Option(help="operator, auditor, partner or sync")],
    expires_at: Annotated[datetime | None, typer.Option(help="ISO 8601; none = no expiry")] = None,
    comment: Annotated[str | None, typer.Option(help="what the key is for")] = None,
) -> None:
    """Issue a key; prints only the key, so scripts can capture it."""
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.astimezone()
    with runtime() as rt, unit_of_work(rt) as session:
        owner = partners.get(session, ref=partner)
        issued = keys.create_key(
            session,
            partner=owner,
            role=role,
            expires_at=expires_at,
            comment=comment,
            actor=actor(),
            secret=rt.secret,
        )
    sys.stdout.write(issued.key + "\n")


@key_group.command("revoke")
def key_revoke(
    key_uuid: Annotated[str, typer.Argument(help="the key's uuid (see key list)")],
) -> None:
    """Revoke a key at once."""
    with unit_of_work() as session:
        record = keys.revoke_key(
            session, record=keys.get_key(session, key_uuid=key_uuid), actor=actor()
        )
        typer.echo(f"{record.uuid} revoked at {record.revoked_at.isoformat()}")  # type: ignore[union-attr]


@key_group.command("list")
def key_list(partner: Annotated[str, typer.Option(help="partner uuid or name")]) -> None:
    """A partner's keys (never the keys themselves)."""
    with unit_of_work() as session:
        owner = partners.get(session, ref=partner)
        records = keys.list_keys(session, partner=owner)
    for r in records:
        state = "revoked" if r.revoked_at else "active"
        typer.echo(
            f"{r.uuid}  {r.role:<8} …{r.key_hint}  {state:<8} created {r.created_at:%Y-%m-%d}"
            f"  last used {r.last_used_at or 'never'}"
        )

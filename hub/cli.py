"""The `hub` command line. Each command is one unit of work calling a service."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from sqlalchemy.orm import Session, sessionmaker

from hub.auth import service as keys
from hub.db import make_engine, make_sessionmaker, session_scope
from hub.errors import HubError
from hub.partners import importer
from hub.partners import service as partners
from hub.partners.schemas import PartnerCreate
from hub.settings import SettingsError, get_settings
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

if TYPE_CHECKING:
    from hub.models import ConnectionJob

app = typer.Typer(
    help="CWN hub: threat-information sharing for the cyber-resilience network.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
partner_app = typer.Typer(help="The partner registry.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(partner_app, name="partner")
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(key_app, name="key")
app.add_typer(audit_app, name="audit")


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def _unit_of_work() -> Iterator[Session]:
    settings = get_settings()
    engine = make_engine(settings)
    try:
        with session_scope(make_sessionmaker(engine)) as session:
            yield session
    except HubError as err:
        field = f" (field {err.field})" if err.field else ""
        raise _fail(f"{err.detail}{field}") from None
    finally:
        engine.dispose()


def _dump(data: object) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


# --- db ---------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database to the newest schema (or REVISION)."""
    from hub import migrate

    engine = make_engine(get_settings())
    try:
        migrate.upgrade(engine, revision)
        typer.echo(f"database at revision {migrate.current(engine)}")
    finally:
        engine.dispose()


@db_app.command("check")
def db_check() -> None:
    """Exit non-zero when the models and the migrated database differ."""
    from hub import migrate

    engine = make_engine(get_settings())
    try:
        diffs = migrate.drift(engine)
    finally:
        engine.dispose()
    if diffs:
        for diff in diffs:
            typer.echo(str(diff), err=True)
        raise _fail("models and migrations differ")
    typer.echo("no drift")


# --- init and serve -----------------------------------------------------------------------


@app.command("init")
def init() -> None:
    """Create the hub's own organisation and, if no operator key exists, print one (once)."""
    settings = get_settings()
    with _unit_of_work() as session:
        org, created = partners.ensure_hub_org(session, name=settings.org_name, actor=_actor())
        typer.echo(f"organisation: {org.name} ({org.uuid}) {'created' if created else 'exists'}")
        if keys.operator_key_exists(session):
            typer.echo(
                "an operator key already exists; make another with "
                f"`hub key create --partner {org.uuid} --role operator`"
            )
            return
        issued = keys.create_key(
            session,
            partner=org,
            role=Role.OPERATOR,
            actor=_actor(),
            secret=settings.secret_key.get_secret_value(),
            comment="first operator key (hub init)",
        )
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    typer.echo(f"operator key: {issued.key}")
    typer.echo("  It is shown this once; keep it somewhere safe. Use it as:")
    typer.echo(f'  curl -H "Authorization: {issued.key}" {base}/api/v1/me')


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
) -> None:
    """Serve the API (uvicorn)."""
    import uvicorn

    from hub import migrate

    settings = get_settings()
    try:
        settings.check()
    except SettingsError as err:
        raise _fail(str(err)) from None
    engine = make_engine(settings)
    try:
        head = migrate.alembic_head()
        if migrate.current(engine) != head:
            raise _fail("the database is not at the newest schema; run `hub db upgrade` first")
    finally:
        engine.dispose()
    uvicorn.run(
        "hub.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        proxy_headers=True,
        server_header=False,
    )


# --- partners -----------------------------------------------------------------------------


@partner_app.command("add")
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
        raise _fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", 2) from None
    with _unit_of_work() as session:
        partner = partners.create(session, data=data, actor=_actor())
        uuid_out = partner.uuid
    typer.echo(uuid_out)


@partner_app.command("list")
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

    with _unit_of_work() as session:
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


@partner_app.command("show")
def partner_show(ref: Annotated[str, typer.Argument(help="uuid or name")]) -> None:
    """Show one partner as JSON."""
    with _unit_of_work() as session:
        data = partners.to_read(partners.get(session, ref=ref)).model_dump(mode="json")
    _dump(data)


@partner_app.command("set-status")
def partner_set_status(
    ref: Annotated[str, typer.Argument(help="uuid or name")],
    status: PartnerStatus,
    reason: Annotated[str | None, typer.Option(help="required for suspended and withdrawn")] = None,
) -> None:
    """Move a partner along its lifecycle."""
    with _unit_of_work() as session:
        partner = partners.get(session, ref=ref)
        partners.change_status(
            session, partner=partner, status=status, reason=reason, actor=_actor()
        )
        typer.echo(f"{partner.uuid} {partner.status}")


@partner_app.command("import")
def partner_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="import the good rows, report the bad ones")
    ] = False,
) -> None:
    """Import partners from CSV or JSON (idempotent by uuid or name); all or nothing."""
    with _unit_of_work() as session:
        rows = importer.read_rows(file)
        report = importer.import_partners(
            session,
            rows=rows,
            actor=_actor(),
            skip_invalid=skip_invalid,
            csv_names=file.suffix.lower() != ".json"
            and file.read_bytes().lstrip()[:1] not in (b"[", b"{"),
        )
        if not report.written:
            session.rollback()
    for error in report.errors:
        typer.echo(f"{file.name}: {error}", err=True)
    if not report.written:
        raise _fail(
            f"{len(report.errors)} bad row(s); nothing was imported "
            "(fix them, or use --skip-invalid to import the rest)"
        )
    typer.echo(
        f"created {len(report.created)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}, skipped {len(report.errors)}"
    )


# --- keys ---------------------------------------------------------------------------------


@key_app.command("create")
def key_create(
    partner: Annotated[str, typer.Option(help="partner uuid or name")],
    role: Annotated[Role, typer.Option(help="operator, auditor, partner or sync")],
    expires_at: Annotated[datetime | None, typer.Option(help="ISO 8601; none = no expiry")] = None,
    comment: Annotated[str | None, typer.Option(help="what the key is for")] = None,
) -> None:
    """Issue a key; prints only the key, so scripts can capture it."""
    settings = get_settings()
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.astimezone()
    with _unit_of_work() as session:
        owner = partners.get(session, ref=partner)
        issued = keys.create_key(
            session,
            partner=owner,
            role=role,
            expires_at=expires_at,
            comment=comment,
            actor=_actor(),
            secret=settings.secret_key.get_secret_value(),
        )
    sys.stdout.write(issued.key + "\n")


@key_app.command("revoke")
def key_revoke(
    key_uuid: Annotated[str, typer.Argument(help="the key's uuid (see key list)")],
) -> None:
    """Revoke a key at once."""
    with _unit_of_work() as session:
        record = keys.revoke_key(
            session, record=keys.get_key(session, key_uuid=key_uuid), actor=_actor()
        )
        typer.echo(f"{record.uuid} revoked at {record.revoked_at.isoformat()}")  # type: ignore[union-attr]


@key_app.command("list")
def key_list(partner: Annotated[str, typer.Option(help="partner uuid or name")]) -> None:
    """A partner's keys (never the keys themselves)."""
    with _unit_of_work() as session:
        owner = partners.get(session, ref=partner)
        records = keys.list_keys(session, partner=owner)
    for r in records:
        state = "revoked" if r.revoked_at else "active"
        typer.echo(
            f"{r.uuid}  {r.role:<8} …{r.key_hint}  {state:<8} created {r.created_at:%Y-%m-%d}"
            f"  last used {r.last_used_at or 'never'}"
        )


# --- worker -------------------------------------------------------------------------------


@app.command("worker")
def worker(
    once: Annotated[bool, typer.Option("--once", help="do everything due now, then exit")] = False,
    interval: Annotated[float, typer.Option(help="seconds to sleep when idle")] = 5.0,
) -> None:
    """Run background jobs (see hub/worker.py): STIX rendering for events too large to
    render at ingest, and the jobs later issues add."""
    import tlp
    from hub import worker as background

    settings = get_settings()
    engine = make_engine(settings)
    context = background.WorkerContext(settings=settings, policy=tlp.DEFAULT_POLICY)
    maker = make_sessionmaker(engine)
    try:
        if once:
            done = background.run_due(maker, context)
            typer.echo(
                "worker: "
                + ", ".join(f"{name} {count}" for name, count in done.items())
                + "; nothing else due"
            )
            return
        background.run_forever(maker, context, interval=interval)
    except HubError as err:
        raise _fail(err.detail) from None
    finally:
        engine.dispose()


# --- ingest -------------------------------------------------------------------------------


@app.command("ingest")
def ingest(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    source: Annotated[
        str | None, typer.Option(help="partner uuid or name the files come from (default: the hub)")
    ] = None,
) -> None:
    """Ingest MISP event files (one event or a list) and STIX 2.1 bundles; all or nothing."""
    import tlp
    from hub.intel import service as intel
    from hub.intel import stix
    from hub.intel.submission import parse_misp_payload
    from hub.partners import repository

    with _unit_of_work() as session:
        org = partners.get(session, ref=source) if source else repository.hub_org(session)
        if org is None:
            raise _fail("the hub's own organisation does not exist yet; run `hub init`")
        for file in files:
            body = file.read_bytes()
            try:
                is_bundle = stix.looks_like_stix(orjson.loads(body))
            except orjson.JSONDecodeError:
                is_bundle = False
            if is_bundle:
                outcomes = stix.ingest_bundle(
                    session,
                    body=body,
                    source=org,
                    actor=_actor(),
                    channel="file",
                    policy=tlp.DEFAULT_POLICY,
                )
            else:
                outcomes = intel.ingest_events(
                    session,
                    payloads=parse_misp_payload(body),
                    source=org,
                    actor=_actor(),
                    channel="file",
                    policy=tlp.DEFAULT_POLICY,
                    default_distribution=get_settings().default_distribution,
                )
            for outcome in outcomes:
                typer.echo(orjson.dumps({"file": file.name, **outcome.as_dict()}).decode())


# --- audit --------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain, then rebuild its Merkle tree and compare every
    stored node and signed checkpoint; exit 1 naming the first problem."""
    from hub.audit import service as audit
    from hub.audit import tree
    from hub.audit.note import NoteError

    try:
        verifier = tree.configured_verifier(get_settings())
    except NoteError as err:
        raise _fail(f"the audit verifier key cannot be used: {err}") from None
    with _unit_of_work() as session:
        result = audit.verify(session)
        if result.ok:
            merkle = tree.verify(session, verifier=verifier)
    if not result.ok:
        raise _fail(
            f"audit log broken at entry {result.first_bad_seq}: {result.problem} "
            f"({result.checked} entries before it verified)"
        )
    typer.echo(f"audit log intact: {result.checked} entries verified")
    if not merkle.ok:
        at = f" at entry {merkle.first_bad_seq}" if merkle.first_bad_seq else ""
        raise _fail(f"audit tree broken{at}: {merkle.problem}")
    typer.echo(
        f"audit tree intact: {merkle.tree_size} entries, {merkle.checkpoints} checkpoints "
        f"verified ({merkle.pending} entries not yet in the tree)"
    )


@audit_app.command("keygen")
def audit_keygen(
    out: Annotated[Path, typer.Option("--out", help="file to write the private key to")],
    name: Annotated[
        str | None,
        typer.Option(help="the key's name, also the checkpoints' origin (default: <host>/audit)"),
    ] = None,
) -> None:
    """Make the Ed25519 key that signs audit checkpoints; write it (mode 0600) to a file
    that HUB_AUDIT_SIGNING_KEY_FILE names, and print its verifier key (public)."""
    from urllib.parse import urlsplit

    from hub.audit.note import NoteError, Signer

    if out.exists():
        raise _fail(f"{out} exists; a signing key is never overwritten")
    settings = get_settings()
    host = urlsplit(settings.public_url).hostname if settings.public_url else None
    try:
        signer = Signer.generate(name or f"{host or 'cwn-hub.localhost'}/audit")
    except NoteError as err:
        raise _fail(str(err)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(str(signer) + "\n")
    typer.echo(f"verifier key: {signer.verifier}")


@audit_app.command("verify-proof")
def audit_verify_proof(
    verifier: Annotated[str, typer.Option(help="the hub's verifier key, or @FILE holding it")],
    checkpoint: Annotated[Path, typer.Option(help="a signed checkpoint (GET /audit/checkpoint)")],
    entry: Annotated[
        Path | None, typer.Option(help="an entry as GET /audit/entries/{seq} answers it")
    ] = None,
    inclusion: Annotated[
        Path | None, typer.Option(help="its inclusion proof (GET /audit/proofs/inclusion)")
    ] = None,
    old_checkpoint: Annotated[
        Path | None, typer.Option(help="an earlier signed checkpoint")
    ] = None,
    consistency: Annotated[
        Path | None, typer.Option(help="the consistency proof between the two")
    ] = None,
) -> None:
    """Verify, offline and without a database, a checkpoint's signature, an entry's
    inclusion in it, and that it extends an earlier checkpoint; exit 1 on any failure."""
    from hub.audit import offline
    from hub.audit.note import NoteError, Verifier

    if (entry is None) != (inclusion is None):
        raise _fail("--entry and --inclusion go together")
    if (old_checkpoint is None) != (consistency is None):
        raise _fail("--old-checkpoint and --consistency go together")
    try:
        key = Verifier.parse(
            Path(verifier[1:]).read_text() if verifier.startswith("@") else verifier
        )
        new = offline.checkpoint(checkpoint.read_text(), key)
        typer.echo(f"checkpoint: signed by {key.name}, {new.size} entries")
        if entry is not None and inclusion is not None:
            answer = orjson.loads(entry.read_bytes())
            offline.inclusion(new, answer, orjson.loads(inclusion.read_bytes()))
            typer.echo(f"entry {answer['seq']}: included in the signed tree")
        if old_checkpoint is not None and consistency is not None:
            old = offline.checkpoint(old_checkpoint.read_text(), key)
            offline.consistency(old, new, orjson.loads(consistency.read_bytes()))
            typer.echo(f"consistent: the tree of {new.size} extends the tree of {old.size}")
    except NoteError as err:
        raise _fail(str(err)) from None
    except (OSError, orjson.JSONDecodeError) as err:
        raise _fail(f"cannot read a file: {err}") from None


# --- coverage -----------------------------------------------------------------------------


class CoverageFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


@app.command("coverage")
def coverage(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="count as at the end of this day (UTC), YYYY-MM-DD"),
    ] = None,
    format: Annotated[
        CoverageFormat, typer.Option("--format", help="json (with how it was counted) or csv")
    ] = CoverageFormat.JSON,
    actual: Annotated[
        bool,
        typer.Option("--actual", help="actual coverage (what partners did in 30/90 days), JSON"),
    ] = False,
    trend: Annotated[
        int | None,
        typer.Option("--trend", min=1, max=36, help="the monthly series over N months, JSON"),
    ] = None,
    status: Annotated[
        PartnerStatus, typer.Option("--status", help="count partners with this status")
    ] = PartnerStatus.ACTIVE,
    tier: Annotated[Tier | None, typer.Option("--tier", help="count one tier only")] = None,
) -> None:
    """Registered coverage (dekkingsgraad) and its gaps, rebuilt from the partner history."""
    from hub.coverage import actual as activity
    from hub.coverage import service as coverage_service

    if (actual or trend) and format is CoverageFormat.CSV:
        raise _fail("CSV is for registered coverage only; --actual and --trend answer JSON", 2)
    with _unit_of_work() as session:
        day = coverage_service.parse_as_of(as_of)
        if actual:
            _dump(activity.actual(session, as_of=day).model_dump(mode="json"))
        elif trend:
            _dump(activity.trend(session, as_of=day, months=trend).model_dump(mode="json"))
        else:
            report = coverage_service.registered(session, as_of=day, status=status, tier=tier)
            if format is CoverageFormat.CSV:
                typer.echo(coverage_service.to_csv(report), nl=False)
            else:
                _dump(report.model_dump(mode="json"))


# --- bench --------------------------------------------------------------------------------


@app.command("bench")
def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="small sizes, short loads (< 1 min)")
    ] = False,
    large: Annotated[bool, typer.Option("--large", help="also 10^6 attributes")] = False,
    check: Annotated[bool, typer.Option("--check", help="exit 1 when any goal fails")] = False,
    json: Annotated[Path | None, typer.Option("--json", help="also write JSON lines here")] = None,
    pg_url: Annotated[
        str | None, typer.Option(help="PostgreSQL URL for I2 (default: HUB_BENCH_PG_URL)")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(help="comma-separated goal ids to run (e.g. L1,L2,L3,T1); default all"),
    ] = None,
    search_total: Annotated[
        int, typer.Option(help="L3: attributes stored for the search (default 10^6)")
    ] = 10**6,
) -> None:
    """Measure the performance goals against in-run references (DESIGN.md §5)."""
    import os

    from hub.bench.runner import Options, run

    sizes = [10**3, 10**4] if quick else [10**4, 10**5] + ([10**6] if large else [])
    options = Options(
        quick=quick,
        large=large,
        json_path=json,
        pg_url=pg_url or os.environ.get("HUB_BENCH_PG_URL"),
        repetitions=1 if quick else 3,
        load_seconds=2.0 if quick else 10.0,
        sizes=sizes,
        only={x.strip().upper() for x in (only or "").split(",") if x.strip()},
        search_total=search_total,
    )
    goals = run(options, out=typer.echo)
    exact_failures = [g for g in goals if g.exact and g.passed is False]
    failures = [g for g in goals if g.passed is False]
    if exact_failures:
        raise _fail(
            "exact counters wrong: " + ", ".join(f"{g.id} {g.what}" for g in exact_failures)
        )
    if check and failures:
        raise _fail("goals not met: " + ", ".join(g.id for g in failures))


# --- connections --------------------------------------------------------------------------

connection_app = typer.Typer(
    help="Connections to outside MISP and TAXII servers.", no_args_is_help=True
)
app.add_typer(connection_app, name="connection")


@connection_app.command("add")
def connection_add(
    name: Annotated[str, typer.Option(help="a name for the connection")],
    kind: Annotated[str, typer.Option(help="misp-pull, misp-push or taxii-pull")],
    url: Annotated[str, typer.Option(help="MISP base URL, or TAXII discovery URL (…/taxii2/)")],
    partner: Annotated[str, typer.Option(help="owner: partner uuid or name (or the hub's org)")],
    api_key: Annotated[
        str | None, typer.Option(help="the remote key (default: $HUB_CONNECTION_KEY)")
    ] = None,
    username: Annotated[str | None, typer.Option(help="TAXII HTTP Basic user")] = None,
    password: Annotated[str | None, typer.Option(help="TAXII HTTP Basic password")] = None,
    interval: Annotated[int, typer.Option(help="seconds between scheduled runs")] = 3600,
    filters: Annotated[
        str | None,
        typer.Option(help='JSON, e.g. {"tags": ["tlp:green"]} or {"collection": "…"}'),
    ] = None,
    no_verify_tls: Annotated[bool, typer.Option("--no-verify-tls")] = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="add it switched off")] = False,
) -> None:
    """Configure a connection; prints its uuid. Credentials are stored encrypted."""
    import os

    from hub.connections import service as connections
    from hub.connections.outbound import OutboundRules
    from hub.connections.schemas import ConnectionCreate

    settings = get_settings()
    key = api_key or os.environ.get("HUB_CONNECTION_KEY")
    data = _connection_input(
        ConnectionCreate,
        name=name,
        kind=kind,
        url=url,
        partner=partner,
        credentials={"api_key": key, "username": username, "password": password},
        interval_seconds=interval,
        filters=_filters_json(filters) if filters else {},
        enabled=not disabled,
        verify_tls=not no_verify_tls,
    )
    with _unit_of_work() as session:
        row = connections.create(
            session,
            data=data,
            secret=settings.secret_key.get_secret_value(),
            actor=_actor(),
            rules=OutboundRules.from_settings(settings),
        )
        uuid_out = row.uuid
    typer.echo(uuid_out)


def _filters_json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise _fail(f"--filters is not JSON: {err}", 2) from None


def _connection_input(model: Any, **fields: Any) -> Any:
    """The validated input, or exit 2 naming the first field that is wrong."""
    from pydantic import ValidationError

    try:
        return model(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        raise _fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", 2) from None


@connection_app.command("update")
def connection_update(
    ref: Annotated[str, typer.Argument(help="uuid or name")],
    url: Annotated[str | None, typer.Option(help="a new URL")] = None,
    api_key: Annotated[
        str | None, typer.Option(help="a new remote key (or $HUB_CONNECTION_KEY with --new-key)")
    ] = None,
    new_key: Annotated[
        bool, typer.Option("--new-key", help="take the new key from $HUB_CONNECTION_KEY")
    ] = False,
    username: Annotated[str | None, typer.Option(help="TAXII HTTP Basic user")] = None,
    password: Annotated[str | None, typer.Option(help="TAXII HTTP Basic password")] = None,
    interval: Annotated[int | None, typer.Option(help="seconds between scheduled runs")] = None,
    filters: Annotated[str | None, typer.Option(help="JSON filters (replace the old ones)")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="switch it on or off")
    ] = None,
    verify_tls: Annotated[bool | None, typer.Option("--verify-tls/--no-verify-tls")] = None,
) -> None:
    """Change a connection (rotated credentials, a new URL, schedule, filters, on/off);
    only what is given changes. Credentials given replace the stored ones, encrypted."""
    import os

    from hub.connections import service as connections
    from hub.connections.outbound import OutboundRules
    from hub.connections.schemas import ConnectionUpdate

    key = api_key or (os.environ.get("HUB_CONNECTION_KEY") if new_key else None)
    fields: dict[str, Any] = {
        "url": url,
        "interval_seconds": interval,
        "filters": _filters_json(filters) if filters else None,
        "enabled": enabled,
        "verify_tls": verify_tls,
    }
    if key or username or password:
        fields["credentials"] = {"api_key": key, "username": username, "password": password}
    given = {k: v for k, v in fields.items() if v is not None}
    if not given:
        raise _fail("nothing to change: give at least one option (see --help)", 2)
    data = _connection_input(ConnectionUpdate, **given)
    settings = get_settings()
    with _unit_of_work() as session:
        row = connections.update(
            session,
            connection=connections.get(session, ref=ref),
            data=data,
            secret=settings.secret_key.get_secret_value(),
            actor=_actor(),
            rules=OutboundRules.from_settings(settings),
        )
        name = row.name
    typer.echo(f"updated {name}: {', '.join(sorted(given))}")


@connection_app.command("list")
def connection_list() -> None:
    """Every connection, with its state."""
    from hub.connections import service as connections

    settings = get_settings()
    with _unit_of_work() as session:
        rows = [
            connections.to_read(session, r, secret=settings.secret_key.get_secret_value())
            for r in connections.list_all(session)
        ]
    for r in rows:
        state = "enabled" if r.enabled else "disabled"
        error = f"  last error: {r.last_error}" if r.last_error else ""
        typer.echo(
            f"{r.uuid}  {r.kind.value:<10} {state:<8} {r.name}  → {r.url}  ({r.partner_name})"
            f"  last success {r.last_success_at or 'never'}{error}"
        )


@connection_app.command("test")
def connection_test(ref: Annotated[str, typer.Argument(help="uuid or name")]) -> None:
    """Ask the remote what it is and what our key may do there."""
    from hub.connections import service as connections
    from hub.connections.outbound import OutboundRules

    settings = get_settings()
    with _unit_of_work() as session:
        row = connections.get(session, ref=ref)
    ok, report, _ = connections.test(
        row,
        secret=settings.secret_key.get_secret_value(),
        rules=OutboundRules.from_settings(settings),
    )
    if not ok:
        raise _fail(report)
    typer.echo(report)


@connection_app.command("run")
def connection_run(
    ref: Annotated[str, typer.Argument(help="uuid or name")],
    queue_only: Annotated[
        bool, typer.Option("--queue-only", help="only queue the run for `hub worker`")
    ] = False,
) -> None:
    """Run a connection now (a durable job: a crash resumes where it stopped)."""
    import tlp
    from hub.connections import jobs
    from hub.connections import service as connections
    from hub.connections.outbound import OutboundRules

    settings = get_settings()
    with _unit_of_work() as session:
        job_id = connections.enqueue(
            session, connection=connections.get(session, ref=ref), trigger="manual"
        ).id
    if queue_only:
        typer.echo("queued; `hub worker` will run it")
        return
    engine = make_engine(settings)
    maker = make_sessionmaker(engine)
    running = True
    try:
        while running:
            ran = jobs.run_next(
                maker,
                policy=tlp.DEFAULT_POLICY,
                secret=settings.secret_key.get_secret_value(),
                job_id=job_id,
                rules=OutboundRules.from_settings(settings),
            )
            job = _connection_job(maker, job_id)
            running = bool(ran) and job.state == "queued"
    finally:
        engine.dispose()
    counts = ", ".join(f"{k} {v}" for k, v in job.stats.items() if k != "errors")
    if job.state == "done":
        typer.echo(f"done: {counts or 'nothing to do'}")
    elif job.state == "dead":
        raise _fail(f"failed: {job.last_error}")
    else:
        typer.echo(
            f"will retry (the worker continues it): {job.last_error or 'waiting its turn'}; "
            f"so far {counts or 'nothing'}"
        )


def _connection_job(maker: sessionmaker[Session], job_id: int) -> ConnectionJob:
    """The job as committed (a detached copy, for reporting)."""
    from hub.models import ConnectionJob

    with session_scope(maker, write=False) as session:
        job = session.get(ConnectionJob, job_id)
        assert job is not None
        return job


@connection_app.command("requeue")
def connection_requeue(ref: Annotated[str, typer.Argument(help="uuid or name")]) -> None:
    """After fixing the cause (credentials, the remote), retry the dead run and dead pushes."""
    from hub.connections import service as connections

    with _unit_of_work() as session:
        job, pushes = connections.requeue(
            session, connection=connections.get(session, ref=ref), actor=_actor()
        )
        job_uuid = job.uuid
    typer.echo(
        f"requeued run {job_uuid} and {pushes} dead push(es); "
        f"`hub worker` (or `hub connection run {ref}`) does them"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()

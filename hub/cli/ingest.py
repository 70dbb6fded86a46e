"""`hub ingest`: MISP event files and STIX 2.1 bundles from disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer

from hub.cli.common import actor, fail, runtime, unit_of_work
from hub.partners import service as partners


def ingest(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True)],
    source: Annotated[
        str | None, typer.Option(help="partner uuid or name the files come from (default: the hub)")
    ] = None,
) -> None:
    """Ingest MISP event files (one event or a list) and STIX 2.1 bundles; all or nothing."""
    from hub.intel import service as intel
    from hub.intel import stix
    from hub.intel.submission import parse_misp_payload
    from hub.partners import repository

    with runtime() as rt, unit_of_work(rt) as session:
        org = partners.get(session, ref=source) if source else repository.hub_org(session)
        if org is None:
            raise fail("the hub's own organisation does not exist yet; run `hub init`")
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
                    actor=actor(),
                    channel="file",
                    policy=rt.policy,
                )
            else:
                outcomes = intel.ingest_events(
                    session,
                    payloads=parse_misp_payload(body),
                    source=org,
                    actor=actor(),
                    channel="file",
                    policy=rt.policy,
                    default_distribution=rt.settings.default_distribution,
                )
            for outcome in outcomes:
                typer.echo(orjson.dumps({"file": file.name, **outcome.as_dict()}).decode())

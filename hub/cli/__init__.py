"""The `hub` command line: one module per group of sub-commands, each command one unit of
work calling a service through the runtime (``hub.runtime``) the API and worker also use.

A command imports the heavier services it calls (ingest, STIX conversion, connections, the
benchmark) inside its function, so that ``hub --help`` and a quick ``hub key create`` do not
load the whole hub: the only function-level imports in ``hub/`` besides the benchmark's
subprocess entry points, and none of them dodges an import circle."""

from __future__ import annotations

import typer

from hub.cli import (
    audit,
    bench,
    connections,
    coverage,
    database,
    exercise,
    incidents,
    ingest,
    knowledge,
    registry,
    server,
)

app = typer.Typer(
    help="CWN hub: threat-information sharing for the cyber-resilience network.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("init")(server.init)
app.command("serve")(server.serve)
app.command("worker")(server.worker)
app.command("ingest")(ingest.ingest)
app.command("coverage")(coverage.coverage)
app.command("bench")(bench.bench)
app.add_typer(database.group, name="db")
app.add_typer(registry.partner_group, name="partner")
app.add_typer(registry.key_group, name="key")
app.add_typer(audit.group, name="audit")
app.add_typer(connections.group, name="connection")
app.add_typer(exercise.group, name="exercise")
app.add_typer(incidents.group, name="incidents")
app.add_typer(knowledge.group, name="knowledge")


def main() -> None:
    app()

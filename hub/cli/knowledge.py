"""`hub knowledge themes`: the maintained vocabulary of knowledge products."""

from __future__ import annotations

import typer

from hub.knowledge import taxonomy

group = typer.Typer(help="Knowledge products.", no_args_is_help=True)


@group.command("themes")
def themes() -> None:
    """Print every kind and theme as the machine tag products carry, with its meaning."""
    for predicate in ("kind", "theme"):
        for value, meaning in taxonomy.values(predicate).items():
            typer.echo(f"{taxonomy.tag(predicate, value)}\t{meaning}")

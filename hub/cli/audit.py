"""`hub audit`: verify the chain and tree, make a signing key, check a proof offline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import orjson
import typer

from hub.cli.common import fail, runtime, unit_of_work
from hub.settings import get_settings

group = typer.Typer(help="The audit log.", no_args_is_help=True)


@group.command("verify")
def audit_verify() -> None:
    """Recompute the audit log's hash chain, then rebuild its Merkle tree and compare every
    stored node and signed checkpoint; exit 1 naming the first problem."""
    from hub.audit import service as audit
    from hub.audit import tree
    from hub.audit.note import NoteError

    with runtime() as rt:
        try:
            verifier = tree.configured_verifier(rt.settings)
        except NoteError as err:
            raise fail(f"the audit verifier key cannot be used: {err}") from None
        with unit_of_work(rt) as session:
            result = audit.verify(session)
            if result.ok:
                merkle = tree.verify(session, verifier=verifier)
    if not result.ok:
        raise fail(
            f"audit log broken at entry {result.first_bad_seq}: {result.problem} "
            f"({result.checked} entries before it verified)"
        )
    typer.echo(f"audit log intact: {result.checked} entries verified")
    if not merkle.ok:
        at = f" at entry {merkle.first_bad_seq}" if merkle.first_bad_seq else ""
        raise fail(f"audit tree broken{at}: {merkle.problem}")
    typer.echo(
        f"audit tree intact: {merkle.tree_size} entries, {merkle.checkpoints} checkpoints "
        f"verified ({merkle.pending} entries not yet in the tree)"
    )


@group.command("keygen")
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
        raise fail(f"{out} exists; a signing key is never overwritten")
    settings = get_settings()
    host = urlsplit(settings.public_url).hostname if settings.public_url else None
    try:
        signer = Signer.generate(name or f"{host or 'cwn-hub.localhost'}/audit")
    except NoteError as err:
        raise fail(str(err)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(str(signer) + "\n")
    typer.echo(f"verifier key: {signer.verifier}")


@group.command("verify-proof")
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
        raise fail("--entry and --inclusion go together")
    if (old_checkpoint is None) != (consistency is None):
        raise fail("--old-checkpoint and --consistency go together")
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
        raise fail(str(err)) from None
    except (OSError, orjson.JSONDecodeError) as err:
        raise fail(f"cannot read a file: {err}") from None

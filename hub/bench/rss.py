"""I3 in a fresh process: peak memory increase while ingesting one file into a new database.

Run as ``python -m hub.bench.rss FILE DATABASE_URL``; prints JSON with the baseline and peak
resident set size (KiB) and the attribute count stored.
"""

from __future__ import annotations

import gc
import sys


def _status(field: str) -> int:
    """A memory figure of this process from /proc (KiB)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> None:
    path, url = sys.argv[1], sys.argv[2]
    import orjson
    from sqlalchemy import func, select

    import tlp
    from hub import migrate
    from hub.db import make_engine, make_sessionmaker, session_scope
    from hub.intel import service, snapshots
    from hub.models import Attribute
    from hub.partners import service as partners
    from hub.settings import Settings

    engine = make_engine(Settings(database_url=url))
    migrate.upgrade(engine)
    maker = make_sessionmaker(engine)
    with session_scope(maker) as session:
        partners.ensure_hub_org(session, name="NCSC-NL", actor="bench")
    # A running hub has these loaded already (ingest renders small events' STIX on the spot);
    # importing them lazily inside the measured ingest would count ~60 MB of code as data.
    import misp_stix_converter  # noqa: F401

    import hub.intel.projection  # noqa: F401
    from hub.intel.validation import describe_types

    describe_types()  # loads pymisp's type table once per process

    gc.collect()
    baseline = _status("VmRSS")
    # Reset the peak (VmHWM) so that setup (imports, migrations) does not hide the ingest's.
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    body = open(path, "rb").read()  # measured on purpose
    with session_scope(maker) as session:
        org = partners.repository.hub_org(session)
        service.ingest_events(
            session,
            payloads=[snapshots.parse_body(body)],
            source=org,
            actor="bench",
            channel="file",
            policy=tlp.DEFAULT_POLICY,
        )
    peak = max(_status("VmHWM"), _status("VmRSS"))
    with maker() as session:
        stored = session.scalar(select(func.count(Attribute.id)))
    sys.stdout.write(
        orjson.dumps({"baseline_kib": baseline, "peak_kib": peak, "stored": stored}).decode() + "\n"
    )


if __name__ == "__main__":
    main()

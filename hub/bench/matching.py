"""M1: notification matching at scale (issue 9: "indexed lookups that stay fast with 10^5
prefixes and 10^6 observations").

Constituency and target entries (IPv4 and IPv6 prefixes of varied lengths, nested and
overlapping, plus domains with registered subdomains and AS numbers) are written in bulk
(Core executemany) at a small and a large scale, and the same batch of observations is
matched against each through ``hub.notifications.matching.match_values``, per event-sized
batch and on both entry tables, as the matching job does per item version. Indexed lookups
grow with log n, so the time per observation barely moves; a scan would grow tenfold.
A brute-force oracle (every entry tested, in Python) checks the winners of a sample.
"""

from __future__ import annotations

import ipaddress
import random
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, insert, text

from hub.bench.core import Bench, Goal
from hub.db import session_scope
from hub.models import ConstituencyEntry, TargetEntry
from hub.notifications import matching
from hub.partners import service as partners
from hub.partners.schemas import PartnerCreate

CONSTITUENCY: Table = ConstituencyEntry.__table__  # type: ignore[assignment]
TARGETS: Table = TargetEntry.__table__  # type: ignore[assignment]
PARTNERS = 40
TARGET_SHARE = 10  # one entry in TARGET_SHARE is a directly registered target
EVENT_SIZE = 1_000  # observations per match_values call: one item version's worth
ORACLE_SAMPLE = 300
_V4_ROOT = (8, 10, 12, 14, 15, 16, 16, 17, 18, 19, 20, 20, 21, 22, 22, 23, 24, 24, 24)
_V6_ROOT = (20, 24, 28, 29, 32, 32, 36, 40, 44, 48, 48, 56, 64)
_NO_PREFIX = {"family": None, "prefix_len": None, "net_start": None, "net_end": None}
_TLDS = ("nl", "com", "org", "eu", "net", "cw", "aw", "sx")
_WORDS = ("zorg", "gemeente", "bank", "water", "energie", "haven", "post", "school", "net")


@dataclass(frozen=True, slots=True)
class Entries:
    """Entry rows in insertion order; any prefix of each list is itself a consistent set."""

    prefixes: list[dict[str, Any]]
    domains: list[dict[str, Any]]
    asns: list[dict[str, Any]]

    def upto(self, n: int) -> list[dict[str, Any]]:
        """The rows of a table of ``n`` prefixes (and proportionally many domains and ASNs)."""
        return self.prefixes[:n] + self.domains[: n // 10] + self.asns[: n // 20]

    def between(self, low: int, high: int) -> list[dict[str, Any]]:
        return (
            self.prefixes[low:high]
            + self.domains[low // 10 : high // 10]
            + self.asns[low // 20 : high // 20]
        )


def _prefix_row(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> dict[str, Any]:
    return {
        "kind": "prefix",
        "value": net.with_prefixlen,
        "family": net.version,
        "prefix_len": net.prefixlen,
        "net_start": f"{int(net.network_address):032x}",
        "net_end": f"{int(net.broadcast_address):032x}",
        "asn": None,
    }


def _random_root(rng: random.Random) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if rng.random() < 0.8:
        plen = rng.choice(_V4_ROOT)
        address = (rng.randint(1, 223) << 24) | rng.getrandbits(24)
        return ipaddress.IPv4Network((address >> (32 - plen) << (32 - plen), plen))
    plen = rng.choice(_V6_ROOT)
    address = (1 << 125) | rng.getrandbits(125)  # 2000::/3
    return ipaddress.IPv6Network((address >> (128 - plen) << (128 - plen), plen))


def _inside(
    rng: random.Random, net: ipaddress.IPv4Network | ipaddress.IPv6Network, plen: int
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A random network of length ``plen`` (≥ the parent's) inside ``net``."""
    bits = net.max_prefixlen
    address = int(net.network_address) | rng.getrandbits(bits - net.prefixlen)
    masked = address >> (bits - plen) << (bits - plen)
    return ipaddress.ip_network((masked, plen))


def make_entries(n: int, *, seed: int = 9) -> Entries:
    """``n`` prefixes, half of them nested in an earlier one (some the very same prefix: two
    organisations registering one network), ``n // 10`` domains (a third of them subdomains
    of an earlier domain) and ``n // 20`` AS numbers."""
    rng = random.Random(seed)
    nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for i in range(n):
        if i and rng.random() < 0.5:
            parent = nets[rng.randrange(i)]
            top = parent.max_prefixlen
            plen = min(top, parent.prefixlen + rng.choice((0, 1, 2, 4, 4, 8, 8, 12, 16, 24)))
            nets.append(_inside(rng, parent, plen))
        else:
            nets.append(_random_root(rng))
    domains: list[str] = []
    for i in range(n // 10):
        if i and rng.random() < 0.33:
            domains.append(f"{rng.choice(_WORDS)}{i}.{domains[rng.randrange(i)]}")
        else:
            domains.append(f"{rng.choice(_WORDS)}-{i}.{rng.choice(_TLDS)}")
    asns = [rng.randint(1_000, 400_000) for _ in range(n // 20)]
    return Entries(
        prefixes=[_prefix_row(net) for net in nets],
        domains=[{**_NO_PREFIX, "kind": "domain", "value": d, "asn": None} for d in domains],
        asns=[{**_NO_PREFIX, "kind": "asn", "value": str(a), "asn": a} for a in asns],
    )


def make_observations(entries: Entries, n: int, *, seed: int = 11) -> list[matching.Value]:
    """``n`` distinct matchable values parsed from attributes as the matching job parses them:
    addresses inside (often nested) registered prefixes and outside any, observed networks,
    hostnames, URLs and e-mail addresses under registered domains at various depths, exact
    domains, misses, and AS numbers."""
    rng = random.Random(seed)
    nets = [ipaddress.ip_network(r["value"]) for r in entries.prefixes]
    domains = [r["value"] for r in entries.domains]
    asns = [r["value"] for r in entries.asns]
    seen: set[matching.Value] = set()
    out: list[matching.Value] = []
    while len(out) < n:
        roll = rng.random()
        if roll < 0.55:
            hit = rng.random() < 0.75
            net = rng.choice(nets) if hit else _random_root(rng)
            address = _inside(rng, net, net.max_prefixlen).network_address
            kind = rng.choice(("ip-dst", "ip-src", "ip-dst|port", "url"))
            raw = {
                "ip-dst|port": f"{address}|443",
                "url": f"http://{address if address.version == 4 else f'[{address}]'}/x",
            }.get(kind, str(address))
        elif roll < 0.60:
            net = rng.choice(nets)
            observed = _inside(rng, net, min(net.max_prefixlen, net.prefixlen + rng.randint(0, 8)))
            kind, raw = "ip-src", observed.with_prefixlen
        elif roll < 0.90:
            depth = rng.choice((0, 1, 1, 2, 3))
            base = rng.choice(domains) if rng.random() < 0.8 else f"miss{rng.getrandbits(32)}.nl"
            name = ".".join([f"h{rng.getrandbits(20)}" for _ in range(depth)] + [base])
            kind = rng.choice(("hostname", "domain", "url", "email-src"))
            raw = {"url": f"https://{name}/login", "email-src": f"info@{name}"}.get(kind, name)
        else:
            asn = rng.choice(asns) if rng.random() < 0.7 else str(rng.randint(400_001, 4_000_000))
            kind, raw = "AS", f"AS{asn}"
        for value in matching.values_of(kind, raw):
            if value not in seen and len(out) < n:
                seen.add(value)
                out.append(value)
    return out


def _batches(values: Sequence[matching.Value], size: int) -> Iterator[Sequence[matching.Value]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def match_all(maker: Any, values: Sequence[matching.Value]) -> dict[str, dict[Any, list[Any]]]:
    """Match as the job does: per item version, on the target and the constituency table."""
    found: dict[str, dict[Any, list[Any]]] = {"targets": {}, "constituency": {}}
    with maker() as session:
        for batch in _batches(values, EVENT_SIZE):
            found["targets"].update(matching.match_values(session, TARGETS, batch))
            found["constituency"].update(matching.match_values(session, CONSTITUENCY, batch))
    return found


# --- the oracle: every entry tested, no index, no cleverness --------------------------------


class Oracle:
    """The most specific entries containing a value, found by testing every entry of the
    table in Python: no index, no masking by prefix length, nothing shared with the hub."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.networks: list[tuple[int, int, int, int, int]] = []  # family, first, last, len, id
        self.other: list[tuple[str, str, int]] = []  # kind, value, id
        for r in rows:
            if r["kind"] == "prefix":
                net = ipaddress.ip_network(r["value"])
                first, last = int(net.network_address), int(net.broadcast_address)
                self.networks.append((net.version, first, last, net.prefixlen, r["id"]))
            else:
                self.other.append((r["kind"], r["value"], r["id"]))

    def winners(self, value: matching.Value) -> set[int]:
        best: tuple[int, set[int]] = (-1, set())
        candidates: list[tuple[int, int]] = []  # (specificity, id)
        if value.field == "ip":
            observed = ipaddress.ip_network(value.value)
            family = observed.version
            first, last = int(observed.network_address), int(observed.broadcast_address)
            candidates = [
                (plen, id_)
                for fam, lo, hi, plen, id_ in self.networks
                if fam == family and lo <= first and last <= hi
            ]
        elif value.field == "domain":
            candidates = [
                (v.count("."), id_)
                for kind, v, id_ in self.other
                if kind == "domain" and (value.value == v or value.value.endswith("." + v))
            ]
        else:
            candidates = [
                (0, id_) for kind, v, id_ in self.other if kind == value.field and v == value.value
            ]
        for rank, id_ in candidates:
            if rank > best[0]:
                best = (rank, {id_})
            elif rank == best[0]:
                best[1].add(id_)
        return best[1]


def _stored(maker: Any, table: Table) -> list[dict[str, Any]]:
    c = table.c
    with maker() as session:
        rows = session.execute(table.select().with_only_columns(c.id, c.kind, c.value)).mappings()
        return [dict(r) for r in rows]


# --- the goal --------------------------------------------------------------------------------


def _partners(maker: Any) -> list[int]:
    with session_scope(maker) as session:
        made = [
            partners.create(
                session,
                data=PartnerCreate(
                    name=f"Bench constituency {i}", type="isp", tier="core", region="nl"
                ),
                actor="bench",
            )
            for i in range(PARTNERS)
        ]
        session.flush()
        return [p.id for p in made]


def _insert(maker: Any, rows: list[dict[str, Any]], partner_ids: list[int], start: int) -> None:
    """Bulk insert (Core executemany); every TARGET_SHARE-th row is a registered target."""
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i, row in enumerate(rows, start):
        row = {**row, "partner_id": partner_ids[i % len(partner_ids)]}
        by_table["targets" if i % TARGET_SHARE == 0 else "constituency"].append(row)
    with session_scope(maker) as session:
        session.execute(insert(CONSTITUENCY), by_table["constituency"])
        session.execute(insert(TARGETS), by_table["targets"])


def _timed(maker: Any, values: Sequence[matching.Value]) -> float:
    """One pass: the batch (10^4 or 10^5 observations) is itself the repetition."""
    match_all(maker, values[:EVENT_SIZE])  # warm the page cache and the statement cache
    started = time.perf_counter()
    match_all(maker, values)
    return time.perf_counter() - started


def _label(n: int) -> str:
    return f"10^{len(str(n)) - 1}"


def measure(bench: Bench, *, backend: str = "SQLite") -> None:
    """Add M1 (large / small table, per observation) and its exact oracle counter."""
    o = bench.o
    suffix = " (PG)" if backend == "PostgreSQL" else ""
    small, large = (10**3, 10**4) if o.quick else (10**4, 10**5)
    n_obs = 10**4 if o.quick else 10**5
    url = o.pg_url if backend == "PostgreSQL" else None
    engine, maker, _ = bench.fresh_db(url, f"matching-{backend.lower()}")
    try:
        entries = make_entries(large)
        values = make_observations(entries, n_obs)
        partner_ids = _partners(maker)
        _insert(maker, entries.upto(small), partner_ids, 0)
        if url:  # as autovacuum does soon after a bulk load; the hub never ANALYZEs SQLite
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        t_small = _timed(maker, values)
        _insert(maker, entries.between(small, large), partner_ids, len(entries.upto(small)))
        if url:
            with engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        t_large = _timed(maker, values)
        ratio = t_large / t_small
        note = (
            f"{n_obs / t_large:,.0f} obs/s at {large:,} prefixes, "
            f"{n_obs / t_small:,.0f} at {small:,}; {EVENT_SIZE} obs per call"
        )
        bench.add(
            Goal(
                "M1",
                f"matching per obs, {_label(large)} / {_label(small)} prefixes{suffix}",
                t_large / n_obs * 1e6,
                t_small / n_obs * 1e6,
                ratio,
                "≤ 2.0",
                ratio <= 2.0,
                unit="µs",
                note=note,
            )
        )
        sample = values[:: max(1, len(values) // ORACLE_SAMPLE)][:ORACLE_SAMPLE]
        found = match_all(maker, sample)
        agree = hits = 0
        for name, table in (("targets", TARGETS), ("constituency", CONSTITUENCY)):
            truth = Oracle(_stored(maker, table))
            for value in sample:
                expected = truth.winners(value)
                agree += {hit.entry_id for hit in found[name].get(value, [])} == expected
                hits += bool(expected)
        bench.add(
            Goal(
                "CNT",
                f"longest-prefix winners = brute force{suffix}",
                agree,
                2 * len(sample),
                None,
                "exact",
                agree == 2 * len(sample),
                unit="",
                exact=True,
                note=f"{len(sample)} observations x 2 tables, {hits} with a winner",
            )
        )
    finally:
        engine.dispose()

"""Which organisations an observation concerns: IP address or prefix, AS number, domain (and its
subdomains), sector, against partners' constituencies and directly registered targets.

Observations come from attributes whose type says they are about an organisation's network
(`OBSERVABLE_TYPES`). Kind: an element tagged ``cwn:kind="victim"`` (attribute, then object,
then event; the nearest tag wins) reports a compromised organisation; anything else a target
(vulnerable or targeted). Sector observations come from event tags ``cwn:sector="<sector>"``.

Lookups are indexed and set-based, and stay fast with 10^5 prefixes and 10^6 observations:
for IP addresses the candidate networks are the address masked to each prefix length that
occurs in the entry table (a handful), looked up by equality on the ``(family, net_start)``
index in chunks; the longest existing prefix wins. Domains look up each of their suffixes
(``a.b.example.nl`` → ``b.example.nl`` → ``example.nl``) on the ``(kind, value)`` index; the
longest wins. No entry table is ever scanned row by row in Python.
"""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

#: Recorded on every match; bump it when the rules below change meaning.
RULE_VERSION = "match-rules@1"

OBSERVABLE_TYPES = {
    "ip-src": ("ip",),
    "ip-dst": ("ip",),
    "ip-src|port": ("ip",),
    "ip-dst|port": ("ip",),
    "domain": ("domain",),
    "hostname": ("domain",),
    "hostname|port": ("domain",),
    "domain|ip": ("domain", "ip"),
    "url": ("url",),
    "email-src": ("email",),
    "email-dst": ("email",),
    "AS": ("asn",),
}

_KIND_TAG = re.compile(r'^cwn:kind\s*=\s*"?(victim|target)"?$', re.I)
_SECTOR_TAG = re.compile(r'^cwn:sector\s*=\s*"?([a-z0-9-]+)"?$', re.I)
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Value:
    """One matchable value: ``field`` ip | asn | domain | sector, in canonical text form."""

    field: str
    value: str


def ip_hex(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """The same fixed-width form constituency entries store (IPv4 in the low bits)."""
    return f"{int(address):032x}"


def _ip(text: str) -> Value | None:
    try:
        if "/" in text:
            net = ipaddress.ip_network(text.strip(), strict=False)
            return Value("ip", net.with_prefixlen)
        return Value("ip", str(ipaddress.ip_address(text.strip())))
    except ValueError:
        return None


def _domain(text: str) -> Value | None:
    name = text.strip().rstrip(".").lower()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if "." not in name or not re.fullmatch(r"[a-z0-9.-]{3,253}", name):
        return None
    return Value("domain", name)


def values_of(attr_type: str, raw: str) -> list[Value]:
    """The matchable values of one attribute (empty for types not about an organisation)."""
    out: list[Value] = []
    parts = raw.split("|")
    for index, field in enumerate(OBSERVABLE_TYPES.get(attr_type, ())):
        text = parts[index] if attr_type == "domain|ip" else parts[0]
        found: Value | None = None
        if field == "ip":
            found = _ip(text)
        elif field == "domain":
            found = _domain(text)
        elif field == "email":
            found = _domain(text.rpartition("@")[2])
        elif field == "url":
            host = urlsplit(text if "://" in text else f"http://{text}").hostname or ""
            found = _ip(host) or _domain(host)
        elif field == "asn":
            digits = text.strip().upper().removeprefix("AS")
            found = Value("asn", str(int(digits))) if digits.isdigit() else None
        if found is not None:
            out.append(found)
    return out


def kind_of(*elements: dict[str, Any] | None) -> str | None:
    """The ``cwn:kind`` tag of the first element (nearest first) that has one."""
    for element in elements:
        for tag in (element or {}).get("Tag") or []:
            m = _KIND_TAG.match(str(tag.get("name", "")))
            if m:
                return m.group(1).lower()
    return None


def sectors_of(event: dict[str, Any]) -> list[str]:
    found = []
    for tag in event.get("Tag") or []:
        m = _SECTOR_TAG.match(str(tag.get("name", "")))
        if m:
            found.append(m.group(1).lower())
    return sorted(set(found))


@dataclass(frozen=True, slots=True)
class EntryHit:
    """The winning entry for one value: the evidence a match stores."""

    entry_id: int
    partner_id: int
    kind: str
    value: str


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def match_values(
    session: Session,
    table: Table,
    values: Iterable[Value],
    partners: Collection[int] | None = None,
    where: Any = None,
) -> dict[Value, list[EntryHit]]:
    """The most specific entries of ``table`` (constituency or target entries) for each value.

    Several entries tie when different organisations registered the same prefix, ASN,
    domain or sector: each is a match (overlapping constituencies). ``partners`` (an
    exercise's participants) limits the entries to those partners' before the most specific
    is chosen: another organisation's narrower prefix neither matches nor hides theirs.
    ``where`` limits the entries further (an exercise's scenario targets: that exercise's).
    """
    by_field: dict[str, set[Value]] = defaultdict(set)
    for v in values:
        by_field[v.field].add(v)
    only = _Only(table, partners, where)
    out: dict[Value, list[EntryHit]] = {}
    out.update(_match_ips(session, only, by_field.get("ip", set())))
    out.update(_match_domains(session, only, by_field.get("domain", set())))
    for field, kind in (("asn", "asn"), ("sector", "sector")):
        out.update(_match_exact(session, only, kind, by_field.get(field, set())))
    return out


@dataclass(frozen=True, slots=True)
class _Only:
    """An entry table, limited to some partners' entries (None: everyone's)."""

    table: Table
    partners: Collection[int] | None
    where: Any = None

    @property
    def c(self) -> Any:
        return self.table.c

    def select(self, *columns: Any) -> Any:
        stmt = select(*columns)
        if self.partners is not None:
            stmt = stmt.where(self.table.c.partner_id.in_(sorted(self.partners)))
        if self.where is not None:
            stmt = stmt.where(self.where)
        return stmt


def _hit(row: Any) -> EntryHit:
    return EntryHit(row.id, row.partner_id, row.kind, row.value)


def _match_exact(
    session: Session, table: _Only, kind: str, values: set[Value]
) -> dict[Value, list[EntryHit]]:
    wanted = {v.value: v for v in values}
    out: dict[Value, list[EntryHit]] = defaultdict(list)
    c = table.c
    for chunk in _chunks(sorted(wanted)):
        rows = session.execute(
            table.select(c.id, c.partner_id, c.kind, c.value).where(
                c.kind == kind, c.value.in_(chunk)
            )
        )
        for row in rows:
            out[wanted[row.value]].append(_hit(row))
    return dict(out)


def _match_domains(
    session: Session, table: _Only, values: set[Value]
) -> dict[Value, list[EntryHit]]:
    suffixes: dict[str, list[tuple[Value, int]]] = defaultdict(list)
    for v in values:
        labels = v.value.split(".")
        for i in range(len(labels) - 1):  # at least two labels
            suffixes[".".join(labels[i:])].append((v, len(labels) - i))
    found: dict[str, list[EntryHit]] = defaultdict(list)
    c = table.c
    for chunk in _chunks(sorted(suffixes)):
        rows = session.execute(
            table.select(c.id, c.partner_id, c.kind, c.value).where(
                c.kind == "domain", c.value.in_(chunk)
            )
        )
        for row in rows:
            found[row.value].append(_hit(row))
    best: dict[Value, tuple[int, list[EntryHit]]] = {}
    for suffix, hits in found.items():
        for v, depth in suffixes[suffix]:
            if v not in best or depth > best[v][0]:
                best[v] = (depth, hits)
    return {v: hits for v, (_, hits) in best.items()}


def _match_ips(session: Session, table: _Only, values: set[Value]) -> dict[Value, list[EntryHit]]:
    if not values:
        return {}
    c = table.c
    lengths: dict[int, list[int]] = defaultdict(list)
    for family, plen in session.execute(
        table.select(c.family, c.prefix_len).where(c.kind == "prefix").distinct()
    ):
        lengths[family].append(plen)
    # candidate network start (family, hex) → [(value, prefix length)]
    candidates: dict[tuple[int, str], list[tuple[Value, int]]] = defaultdict(list)
    for v in values:
        net = ipaddress.ip_network(v.value)
        bits = net.max_prefixlen
        address = int(net.network_address)
        for plen in lengths.get(net.version, ()):
            if plen > net.prefixlen:
                continue  # an entry narrower than the observed network does not contain it
            start = address >> (bits - plen) << (bits - plen) if plen else 0
            candidates[(net.version, f"{start:032x}")].append((v, plen))
    best: dict[Value, tuple[int, list[EntryHit]]] = {}
    for family in (4, 6):
        starts = sorted(s for f, s in candidates if f == family)
        for chunk in _chunks(starts):
            rows = session.execute(
                table.select(c.id, c.partner_id, c.kind, c.value, c.prefix_len, c.net_start).where(
                    c.kind == "prefix", c.family == family, c.net_start.in_(chunk)
                )
            )
            for row in rows:
                for v, plen in candidates[(family, row.net_start)]:
                    if plen != row.prefix_len:
                        continue
                    current = best.get(v)
                    if current is None or plen > current[0]:
                        best[v] = (plen, [_hit(row)])
                    elif plen == current[0]:
                        current[1].append(_hit(row))
    return {v: hits for v, (_, hits) in best.items()}

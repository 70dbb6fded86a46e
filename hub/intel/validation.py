"""Validating and normalising a MISP event as MISP and PyMISP produce it (pure, on dicts).

Normalisation, so that stored events look as MISP would send them: numbers become strings
(``"distribution": "3"``), booleans accept ``0/1``/``"0"/"1"``, a missing uuid or timestamp is
generated (as MISP does), a missing event distribution is the hub's default
(``HUB_DEFAULT_DISTRIBUTION``, 1 = the community, as MISP's default) and a missing attribute
distribution is 5 (inherit), a missing category is the type's default. Local numeric ids are
dropped: the hub identifies everything by uuid.

An element that comes without a timestamp gets "now" and is named in ``stamped``: the merge
applies it whatever the stored one's timestamp (PyMISP drops the timestamp of every element
it changed, and two edits within one second must not lose the second).
"""

from __future__ import annotations

import datetime
import json
import math
import re
import time
import uuid as uuid_mod
from functools import lru_cache
from pathlib import Path
from typing import Any

import tlp
from hub.errors import InvalidField

MAX_INFO = 65_535
MAX_VALUE = 131_072
INT64_MAX = 2**63 - 1  # the widest integer either database stores
_DIGITS = re.compile(r"[+-]?[0-9]+")
_ID_KEYS = ("id", "event_id", "object_id", "org_id", "orgc_id", "sharing_group_id", "user_id")


@lru_cache(maxsize=1)
def describe_types() -> dict[str, Any]:
    """MISP's attribute types and categories, as PyMISP ships them (describeTypes.json)."""
    import pymisp

    path = Path(pymisp.__file__).parent / "data" / "describeTypes.json"
    return json.loads(path.read_text())["result"]  # type: ignore[no-any-return]


def _fail(path: str, message: str) -> InvalidField:
    return InvalidField(f"{path}: {message}", field=path)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuid(value: Any, path: str) -> str:
    if value in (None, ""):
        return str(uuid_mod.uuid4())
    if isinstance(value, str) and _UUID.fullmatch(value):
        return value  # the common case, already canonical
    try:
        return str(uuid_mod.UUID(str(value)))
    except ValueError:
        raise _fail(path, f"{value!r} is not a uuid") from None


def _int(value: Any, path: str, *, low: int | None = None, high: int | None = None) -> int:
    """A whole number within ``low``..``high`` (and 64 bits): from an int, a finite float or
    ASCII digits — not Unicode digits ("²", "١٢٣"), which Python's int() would half take."""
    if isinstance(value, bool):
        raise _fail(path, "must be a number, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(path, f"{value!r} is not a number")
        number = int(value)
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise _fail(path, f"{str(value)[:40]!r} is not a number")
    low = -INT64_MAX - 1 if low is None else low
    high = INT64_MAX if high is None else high
    if not low <= number <= high:
        raise _fail(path, f"{str(number)[:40]} is out of range {low}..{high}")
    return number


def _bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return bool(int(value))
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _fail(path, f"{value!r} is not a boolean")


def _list(container: dict[str, Any], key: str, path: str) -> list[Any]:
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(f"{path}.{key}", "must be a list")
    return value


def _tags(container: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """The element's tags, normalised in place (10^5 attributes: no second set of dicts)."""
    tags = _list(container, "Tag", path)
    for i, tag in enumerate(tags):
        if isinstance(tag, str):
            tag = tags[i] = {"name": tag}
        if not isinstance(tag, dict) or not isinstance(tag.get("name"), str) or not tag["name"]:
            raise _fail(f"{path}.Tag.{i}", "a tag needs a name")
        if len(tag["name"]) > 255:
            raise _fail(f"{path}.Tag.{i}.name", "is longer than 255 characters")
        _keep(tag, TAG_FIELDS)
        local = tag.get("local")
        if local is not None and not isinstance(local, bool):
            tag["local"] = _bool(local, f"{path}.Tag.{i}.local")
    return tags


def _sharing_group(container: dict[str, Any], distribution: int, path: str) -> None:
    if distribution != 4:
        container.pop("SharingGroup", None)
        return
    group = container.get("SharingGroup")
    if not isinstance(group, dict):
        raise _fail(
            f"{path}.SharingGroup",
            "distribution 4 needs the SharingGroup with its member organisations",
        )
    where = f"{path}.SharingGroup"
    _organisation(group, where)
    for i, entry in enumerate(_list(group, "SharingGroupOrg", where)):
        if not isinstance(entry, dict):
            raise _fail(f"{where}.SharingGroupOrg.{i}", "a member must be an object")
        _organisation(entry, f"{where}.SharingGroupOrg.{i}")


def _organisation(container: dict[str, Any], path: str) -> None:
    """An optional ``Organisation`` object: its uuid and name, when given, are text."""
    org = container.get("Organisation")
    if org is None:
        return
    if not isinstance(org, dict):
        raise _fail(f"{path}.Organisation", "must be an object")
    for key in ("uuid", "name"):
        if org.get(key) is not None and not isinstance(org[key], str):
            raise _fail(f"{path}.Organisation.{key}", "must be text")


def _sightings(attr: dict[str, Any], path: str, ceiling: tlp.Tlp | None) -> None:
    for i, sighting in enumerate(_list(attr, "Sighting", path)):
        where = f"{path}.Sighting.{i}"
        if not isinstance(sighting, dict):
            raise _fail(where, "a sighting must be an object")
        if sighting.get("uuid") not in (None, ""):
            sighting["uuid"] = _uuid(sighting["uuid"], f"{where}.uuid")
        if sighting.get("type") not in (None, ""):
            _int(sighting["type"], f"{where}.type", low=0, high=2)
        if sighting.get("date_sighting") not in (None, ""):
            _int(sighting["date_sighting"], f"{where}.date_sighting", low=0)
        _organisation(sighting, where)
        _keep(sighting, SIGHTING_FIELDS, where, ceiling=ceiling)
        if isinstance(sighting.get("Organisation"), dict):
            _keep(sighting["Organisation"], ORG_FIELDS)


def _text_fields(element: dict[str, Any], path: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        if element.get(key) is not None and not isinstance(element[key], str):
            raise _fail(f"{path}.{key}", "must be text")


# The MISP fields the hub keeps, per element (an allow-list: DESIGN §3 "What leaves the hub").
# Anything else a source sends — analyst data (Note, Opinion, Relationship), local
# correlations, decaying scores, the creating user, cryptographic keys, custom keys — is not
# stored, so it can never leave. Ids are dropped earlier (``_common``).
EVENT_FIELDS = frozenset(
    {
        "uuid", "info", "date", "threat_level_id", "analysis", "distribution", "SharingGroup",
        "published", "timestamp", "publish_timestamp", "attribute_count", "extends_uuid",
        "disable_correlation", "proposal_email_lock", "locked", "protected", "deleted",
        "Orgc", "Tag", "Attribute", "Object", "EventReport", "Galaxy",
        "ShadowAttribute", "event_creator_email",  # dropped by ingest, with a reason
    }
)  # fmt: skip
ATTRIBUTE_FIELDS = frozenset(
    {
        "uuid", "type", "category", "value", "to_ids", "distribution", "SharingGroup",
        "comment", "timestamp", "deleted", "disable_correlation", "object_relation",
        "first_seen", "last_seen", "data", "Tag", "Sighting", "Galaxy",
        "ShadowAttribute",  # dropped by ingest (proposals never leave)
        "purged",  # a hard delete through /misp (hub.misp_compat.edits); never leaves
    }
)  # fmt: skip
OBJECT_FIELDS = frozenset(
    {
        "uuid", "name", "meta-category", "description", "template_uuid", "template_version",
        "distribution", "SharingGroup", "comment", "timestamp", "deleted", "first_seen",
        "last_seen", "Attribute", "ObjectReference", "purged",
        "Tag",  # MISP has no object tags; the hub reads TLP markings there (DESIGN §3)
    }
)  # fmt: skip
REFERENCE_FIELDS = frozenset(
    {
        "uuid", "object_uuid", "referenced_uuid", "referenced_type", "relationship_type",
        "comment", "timestamp", "deleted",
    }
)  # fmt: skip
REPORT_FIELDS = frozenset(
    {"uuid", "name", "content", "distribution", "SharingGroup", "timestamp", "deleted", "purged"}
)
ORG_FIELDS = frozenset({"uuid", "name"})
SIGHTING_FIELDS = frozenset({"uuid", "type", "date_sighting", "source", "Organisation"})
TAG_FIELDS = frozenset({"name", "colour", "local", "exportable", "numerical_value"})
GALAXY_FIELDS = frozenset(
    {"uuid", "name", "type", "description", "namespace", "version", "icon", "kill_chain_order",
     "GalaxyCluster"}
)  # fmt: skip
CLUSTER_FIELDS = frozenset(
    {"uuid", "type", "value", "tag_name", "description", "source", "authors", "version", "meta",
     "collection_uuid", "galaxy_id"}
)  # fmt: skip


def _keep(
    element: dict[str, Any],
    allowed: frozenset[str],
    path: str = "",
    *,
    ceiling: tlp.Tlp | None = None,
) -> None:
    """Drop, in place, every key of ``element`` the hub does not keep; but never a TLP tag
    stricter than ``ceiling`` (the event's own label: what the element inherits at least)
    where the hub keeps no tags (an event report, a sighting, a reference …): dropped, the
    element would go out under the label it inherits, lower than its own (DESIGN.md §3:
    never out unmarked), so it is refused, naming where. A tag at or below the ceiling
    changes nothing and is dropped with the rest."""
    for key in [k for k in element if k not in allowed]:
        if key == "Tag" and not _within(element[key], ceiling):
            where = f"{path}.Tag" if path else "Tag"
            raise _fail(
                where,
                "a TLP tag stricter than the event's label cannot be kept here (the hub keeps "
                "no tags on this element); send the element in an event or object that "
                "carries that label",
            )
        del element[key]


def _is_day(text: Any) -> bool:
    if not isinstance(text, str) or len(text) != 10:
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _tlp_names(tags: Any) -> list[str]:
    items = tags if isinstance(tags, list) else [tags]
    out = []
    for tag in items:
        name = tag.get("name") if isinstance(tag, dict) else tag
        if isinstance(name, str) and name.strip().lower().replace(" ", "").startswith("tlp:"):
            out.append(name)
    return out


def _within(tags: Any, ceiling: tlp.Tlp | None) -> bool:
    """Whether every TLP tag among ``tags`` is a label at or below ``ceiling`` (a flag such
    as ``tlp:ex:chr``, an unknown label or no ceiling: no)."""
    for name in _tlp_names(tags):
        if ceiling is None:
            return False
        try:
            label = tlp.parse_label(name)
        except tlp.TLPError:
            return False
        if label.rank > ceiling.rank:
            return False
    return True


def _own_label(event: dict[str, Any]) -> tlp.Tlp:
    """A lower bound of the event's label, from its shared TLP tags (the strictest readable
    one; none: CLEAR, since the default given to unlabelled events is at least that). A tag
    on a report, sighting or reference at or below it changes nothing."""
    found = tlp.Tlp.CLEAR
    for tag in event.get("Tag") or []:
        if not isinstance(tag, dict) or tag.get("local") is True:
            continue
        for name in _tlp_names([tag]):
            try:
                label = tlp.parse_label(name)
            except tlp.TLPError:
                continue
            if label.rank > found.rank:
                found = label
    return found


def _shared_cluster(cluster: dict[str, Any]) -> bool:
    """A cluster the source keeps to itself (MISP's local galaxy cluster, "your organisation
    only") is not kept: fail closed."""
    return not (
        cluster.get("local") in (True, 1, "1", "true")
        or cluster.get("local_only") in (True, 1, "1", "true")
        or str(cluster.get("distribution", "")) == "0"
    )


_GALAXY_NS = uuid_mod.UUID("3f0c5f3e-2a51-4d55-9d0b-6a3f1c2b7e10")


def _derived_uuid(name: str) -> str:
    return str(uuid_mod.uuid5(_GALAXY_NS, name))


def _galaxies(element: dict[str, Any], path: str) -> None:
    """Galaxies kept as MISP exports them, only with what misp-stix and MISP read (a missing
    description is empty, a missing uuid derived from the tag, so that the STIX rendering
    does not fail on them), no cluster the source kept local, no organisation of a
    cluster's author."""
    if "Galaxy" not in element:
        return
    galaxies = []
    for i, galaxy in enumerate(_list(element, "Galaxy", path)):
        where = f"{path}.Galaxy.{i}"
        if not isinstance(galaxy, dict):
            raise _fail(where, "a galaxy must be an object")
        _text_fields(galaxy, where, ("name", "type", "uuid", "description", "namespace"))
        clusters = []
        for j, cluster in enumerate(_list(galaxy, "GalaxyCluster", where)):
            cwhere = f"{where}.GalaxyCluster.{j}"
            if not isinstance(cluster, dict):
                raise _fail(cwhere, "a cluster must be an object")
            _text_fields(cluster, cwhere, ("value", "tag_name", "uuid", "type", "description"))
            if not _shared_cluster(cluster):
                continue
            _keep(cluster, CLUSTER_FIELDS)
            for key in ("description", "value"):  # misp-stix reads each
                cluster.setdefault(key, "")
            if not cluster.get("uuid"):  # MISP exports some without: one derived from its tag
                cluster["uuid"] = _derived_uuid(cluster.get("tag_name") or cluster["value"])
            cluster.setdefault("type", galaxy.get("type") or "")
            clusters.append(cluster)
        _keep(galaxy, GALAXY_FIELDS)
        for key in ("description", "type"):  # misp-stix reads each
            galaxy.setdefault(key, "")
        if not galaxy.get("uuid"):
            galaxy["uuid"] = _derived_uuid("galaxy:" + str(galaxy["type"]))
        galaxy.setdefault("name", galaxy.get("type") or "")
        galaxy["GalaxyCluster"] = clusters
        if clusters:
            galaxies.append(galaxy)
    element["Galaxy"] = galaxies


def _common(
    element: dict[str, Any],
    path: str,
    *,
    now: int,
    default_distribution: int,
    stamped: set[str] | None = None,
) -> None:
    for key in _ID_KEYS:
        element.pop(key, None)
    element["uuid"] = _uuid(element.get("uuid"), f"{path}.uuid")
    stamp = element.get("timestamp")
    if stamp in (None, "", 0, "0"):
        element["timestamp"] = str(now)
        if stamped is not None:
            stamped.add(element["uuid"])
    elif not (isinstance(stamp, str) and stamp.isascii() and stamp.isdigit() and len(stamp) < 19):
        # the common string (ASCII digits, 64 bits) is kept as it is
        element["timestamp"] = str(_int(stamp, f"{path}.timestamp", low=0))
    dist = element.get("distribution")
    if dist in (None, ""):
        distribution = default_distribution
    else:
        distribution = _int(dist, f"{path}.distribution", low=0, high=5)
    if not (isinstance(dist, str) and len(dist) == 1):
        element["distribution"] = str(distribution)
    _sharing_group(element, distribution, path)
    if "deleted" in element:
        element["deleted"] = _bool(element["deleted"], f"{path}.deleted")
    if element.get("comment") is not None and not isinstance(element["comment"], str):
        raise _fail(f"{path}.comment", "must be text")


def _attribute(
    attr: Any,
    path: str,
    *,
    now: int,
    in_object: bool,
    stamped: set[str] | None = None,
    ceiling: tlp.Tlp | None = None,
) -> dict[str, Any]:
    if not isinstance(attr, dict):
        raise _fail(path, "an attribute must be an object")
    types = describe_types()
    kind = attr.get("type")
    if not isinstance(kind, str) or kind not in types["sane_defaults"]:
        raise _fail(f"{path}.type", f"unknown attribute type {kind!r}")
    value = attr.get("value")
    if isinstance(value, bool):  # MISP stores boolean values as 1 and 0
        value = "1" if value else "0"
    if not isinstance(value, (str, int, float)):
        raise _fail(f"{path}.value", "an attribute needs a value (text)")
    value = str(value)
    if not value.strip() or len(value) > MAX_VALUE:
        raise _fail(f"{path}.value", "must be non-empty text of at most 131072 characters")
    attr["value"] = value
    category = attr.get("category") or types["sane_defaults"][kind]["default_category"]
    if category not in types["categories"]:
        raise _fail(f"{path}.category", f"unknown category {category!r}")
    attr["category"] = category
    attr["to_ids"] = _bool(
        attr.get("to_ids", types["sane_defaults"][kind]["to_ids"]), f"{path}.to_ids"
    )
    _common(attr, path, now=now, default_distribution=5, stamped=stamped)
    attr["Tag"] = _tags(attr, path)
    if in_object and not isinstance(attr.get("object_relation"), str):
        raise _fail(f"{path}.object_relation", "an object's attribute needs its relation")
    for key in ("ShadowAttribute", "RelatedAttribute", "Sighting"):
        if key in attr and not isinstance(attr[key], list):
            raise _fail(f"{path}.{key}", "must be a list")
    _sightings(attr, path, ceiling)
    _galaxies(attr, path)
    _keep(attr, ATTRIBUTE_FIELDS)
    return attr


def normalise_event(
    payload: Any,
    *,
    now: int | None = None,
    default_distribution: int = 1,
    stamped: set[str] | None = None,
) -> dict[str, Any]:
    """A validated, normalised bare event; InvalidField naming the first wrong field.

    The payload is normalised in place (no copy of 10^5 attribute dicts): pass a freshly
    parsed one. ``stamped`` collects the uuids of the elements that came without a timestamp
    (see the module doc).
    """
    now = now or int(time.time())
    if isinstance(payload, dict) and isinstance(payload.get("Event"), dict):
        payload = payload["Event"]
    if not isinstance(payload, dict):
        raise _fail("Event", "an event must be a JSON object")
    event = payload  # normalised in place: the caller hands over a freshly parsed payload
    path = "Event"
    info = event.get("info")
    if not isinstance(info, str) or not info.strip():
        raise _fail(f"{path}.info", "an event needs an info (its title)")
    if len(info) > MAX_INFO:
        raise _fail(f"{path}.info", "is longer than 65535 characters")
    _common(event, path, now=now, default_distribution=default_distribution)
    if event["distribution"] == "5":
        raise _fail(f"{path}.distribution", "5 (inherit) is for attributes and objects only")
    event["published"] = _bool(event.get("published", False), f"{path}.published")
    for key in ("threat_level_id", "analysis"):
        if key in event:
            high = 4 if key == "threat_level_id" else 2
            event[key] = str(
                _int(event[key], f"{path}.{key}", low=0 if key == "analysis" else 1, high=high)
            )
    if "deleted" in event:  # set by the event's deletion through /misp (hub.misp_compat)
        event["deleted"] = _bool(event["deleted"], f"{path}.deleted")
    if "publish_timestamp" in event:
        event["publish_timestamp"] = str(
            _int(event["publish_timestamp"], f"{path}.publish_timestamp", low=0)
        )
    date = event.get("date")
    if date is not None and not _is_day(date):
        raise _fail(f"{path}.date", "must be a calendar day, YYYY-MM-DD")
    event["Tag"] = _tags(event, path)
    ceiling = _own_label(event)
    event["Attribute"] = [
        _attribute(
            a, f"{path}.Attribute.{i}", now=now, in_object=False, stamped=stamped, ceiling=ceiling
        )
        for i, a in enumerate(_list(event, "Attribute", path))
    ]
    objects = []
    for i, obj in enumerate(_list(event, "Object", path)):
        where = f"{path}.Object.{i}"
        if not isinstance(obj, dict):
            raise _fail(where, "an object must be a JSON object")

        if not isinstance(obj.get("name"), str) or not obj["name"]:
            raise _fail(f"{where}.name", "an object needs a name")
        _common(obj, where, now=now, default_distribution=5, stamped=stamped)
        obj["Attribute"] = [
            _attribute(
                a,
                f"{where}.Attribute.{j}",
                now=now,
                in_object=True,
                stamped=stamped,
                ceiling=ceiling,
            )
            for j, a in enumerate(_list(obj, "Attribute", where))
        ]
        references = []
        for j, ref in enumerate(_list(obj, "ObjectReference", where)):
            rwhere = f"{where}.ObjectReference.{j}"
            if not isinstance(ref, dict) or not ref.get("referenced_uuid"):
                raise _fail(rwhere, "a reference needs referenced_uuid")

            for key in ("id", "object_id", "event_id", "referenced_id"):
                ref.pop(key, None)
            ref["uuid"] = _uuid(ref.get("uuid"), f"{rwhere}.uuid")
            ref["referenced_uuid"] = _uuid(ref["referenced_uuid"], f"{rwhere}.referenced_uuid")
            ref["object_uuid"] = obj["uuid"]
            if ref.get("timestamp") in (None, "", 0, "0") and stamped is not None:
                stamped.add(ref["uuid"])
            ref["timestamp"] = str(_int(ref.get("timestamp") or now, f"{rwhere}.timestamp", low=0))
            _keep(ref, REFERENCE_FIELDS, rwhere, ceiling=ceiling)
            references.append(ref)
        obj["ObjectReference"] = references
        _keep(obj, OBJECT_FIELDS)
        objects.append(obj)
    event["Object"] = objects
    if "EventReport" in event:
        event["EventReport"] = [
            _report(r, f"{path}.EventReport.{i}", now=now, stamped=stamped, ceiling=ceiling)
            for i, r in enumerate(_list(event, "EventReport", path))
        ]
    _galaxies(event, path)
    _no_duplicate_uuids(event)
    _keep(event, EVENT_FIELDS)
    if isinstance(event.get("Orgc"), dict):
        _keep(event["Orgc"], ORG_FIELDS)
    return event


def _report(
    report: Any, path: str, *, now: int, stamped: set[str] | None, ceiling: tlp.Tlp | None
) -> dict[str, Any]:
    """An event report (MISP's markdown report): a name, its content, a uuid and a timestamp."""
    if not isinstance(report, dict):
        raise _fail(path, "an event report must be an object")
    if not isinstance(report.get("name"), str) or not report["name"].strip():
        raise _fail(f"{path}.name", "an event report needs a name")
    content = report.get("content")
    if content is None:
        report["content"] = ""
    elif not isinstance(content, str) or len(content) > MAX_VALUE * 8:
        raise _fail(f"{path}.content", "must be text of at most 1048576 characters")
    _common(report, path, now=now, default_distribution=5, stamped=stamped)
    _keep(report, REPORT_FIELDS, path, ceiling=ceiling)
    return report


def _no_duplicate_uuids(event: dict[str, Any]) -> None:
    seen: dict[str, str] = {event["uuid"]: "Event"}

    def check(uuid: str, where: str) -> None:
        if uuid in seen:
            raise _fail(f"{where}.uuid", f"uuid {uuid} is used twice in this event ({seen[uuid]})")
        seen[uuid] = where

    for i, attr in enumerate(event["Attribute"]):
        check(attr["uuid"], f"Event.Attribute.{i}")
    for i, obj in enumerate(event["Object"]):
        check(obj["uuid"], f"Event.Object.{i}")
        for j, attr in enumerate(obj["Attribute"]):
            check(attr["uuid"], f"Event.Object.{i}.Attribute.{j}")

"""The fields of a MISP element, checked and normalised as MISP would send them: the building
blocks of ``hub.intel.validation`` (numbers, booleans, uuids, tags, sharing groups,
organisations, sightings, galaxies, and the fields an element may keep). Pure, on dicts."""

from __future__ import annotations

import datetime
import math
import re
import uuid as uuid_mod
from typing import Any

import tlp
from hub.errors import InvalidField

MAX_VALUE = 131_072
INT64_MAX = 2**63 - 1  # the widest integer either database stores
_DIGITS = re.compile(r"[+-]?[0-9]+")


def fail(path: str, message: str) -> InvalidField:
    return InvalidField(f"{path}: {message}", field=path)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def as_uuid(value: Any, path: str) -> str:
    if value in (None, ""):
        return str(uuid_mod.uuid4())
    if isinstance(value, str) and _UUID.fullmatch(value):
        return value  # the common case, already canonical
    try:
        return str(uuid_mod.UUID(str(value)))
    except ValueError:
        raise fail(path, f"{value!r} is not a uuid") from None


def as_int(value: Any, path: str, *, low: int | None = None, high: int | None = None) -> int:
    """A whole number within ``low``..``high`` (and 64 bits): from an int, a finite float or
    ASCII digits — not Unicode digits ("²", "١٢٣"), which Python's int() would half take."""
    if isinstance(value, bool):
        raise fail(path, "must be a number, not a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise fail(path, f"{value!r} is not a number")
        number = int(value)
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise fail(path, f"{str(value)[:40]!r} is not a number")
    low = -INT64_MAX - 1 if low is None else low
    high = INT64_MAX if high is None else high
    if not low <= number <= high:
        raise fail(path, f"{str(number)[:40]} is out of range {low}..{high}")
    return number


def as_bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):
        return bool(int(value))
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise fail(path, f"{value!r} is not a boolean")


def list_of(container: dict[str, Any], key: str, path: str) -> list[Any]:
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail(f"{path}.{key}", "must be a list")
    return value


def tags_of(container: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """The element's tags, normalised in place (10^5 attributes: no second set of dicts)."""
    tags = list_of(container, "Tag", path)
    for i, tag in enumerate(tags):
        if isinstance(tag, str):
            tag = tags[i] = {"name": tag}
        if not isinstance(tag, dict) or not isinstance(tag.get("name"), str) or not tag["name"]:
            raise fail(f"{path}.Tag.{i}", "a tag needs a name")
        if len(tag["name"]) > 255:
            raise fail(f"{path}.Tag.{i}.name", "is longer than 255 characters")
        keep_fields(tag, TAG_FIELDS)
        local = tag.get("local")
        if local is not None and not isinstance(local, bool):
            tag["local"] = as_bool(local, f"{path}.Tag.{i}.local")
    return tags


def check_sharing_group(container: dict[str, Any], distribution: int, path: str) -> None:
    if distribution != 4:
        container.pop("SharingGroup", None)
        return
    group = container.get("SharingGroup")
    if not isinstance(group, dict):
        raise fail(
            f"{path}.SharingGroup",
            "distribution 4 needs the SharingGroup with its member organisations",
        )
    where = f"{path}.SharingGroup"
    check_organisation(group, where)
    for i, entry in enumerate(list_of(group, "SharingGroupOrg", where)):
        if not isinstance(entry, dict):
            raise fail(f"{where}.SharingGroupOrg.{i}", "a member must be an object")
        check_organisation(entry, f"{where}.SharingGroupOrg.{i}")


def check_organisation(container: dict[str, Any], path: str) -> None:
    """An optional ``Organisation`` object: its uuid and name, when given, are text."""
    org = container.get("Organisation")
    if org is None:
        return
    if not isinstance(org, dict):
        raise fail(f"{path}.Organisation", "must be an object")
    for key in ("uuid", "name"):
        if org.get(key) is not None and not isinstance(org[key], str):
            raise fail(f"{path}.Organisation.{key}", "must be text")


def check_sightings(attr: dict[str, Any], path: str, ceiling: tlp.Tlp | None) -> None:
    for i, sighting in enumerate(list_of(attr, "Sighting", path)):
        where = f"{path}.Sighting.{i}"
        if not isinstance(sighting, dict):
            raise fail(where, "a sighting must be an object")
        if sighting.get("uuid") not in (None, ""):
            sighting["uuid"] = as_uuid(sighting["uuid"], f"{where}.uuid")
        if sighting.get("type") not in (None, ""):
            as_int(sighting["type"], f"{where}.type", low=0, high=2)
        if sighting.get("date_sighting") not in (None, ""):
            as_int(sighting["date_sighting"], f"{where}.date_sighting", low=0)
        check_organisation(sighting, where)
        keep_fields(sighting, SIGHTING_FIELDS, where, ceiling=ceiling)
        if isinstance(sighting.get("Organisation"), dict):
            keep_fields(sighting["Organisation"], ORG_FIELDS)


def check_text_fields(element: dict[str, Any], path: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        if element.get(key) is not None and not isinstance(element[key], str):
            raise fail(f"{path}.{key}", "must be text")


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


def keep_fields(
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
        if key == "Tag" and not within(element[key], ceiling):
            where = f"{path}.Tag" if path else "Tag"
            raise fail(
                where,
                "a TLP tag stricter than the event's label cannot be kept here (the hub keeps "
                "no tags on this element); send the element in an event or object that "
                "carries that label",
            )
        del element[key]


def is_day(text: Any) -> bool:
    if not isinstance(text, str) or len(text) != 10:
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def tlp_names(tags: Any) -> list[str]:
    items = tags if isinstance(tags, list) else [tags]
    out = []
    for tag in items:
        name = tag.get("name") if isinstance(tag, dict) else tag
        if isinstance(name, str) and name.strip().lower().replace(" ", "").startswith("tlp:"):
            out.append(name)
    return out


def within(tags: Any, ceiling: tlp.Tlp | None) -> bool:
    """Whether every TLP tag among ``tags`` is a label at or below ``ceiling`` (a flag such
    as ``tlp:ex:chr``, an unknown label or no ceiling: no)."""
    for name in tlp_names(tags):
        if ceiling is None:
            return False
        try:
            label = tlp.parse_label(name)
        except tlp.TLPError:
            return False
        if label.rank > ceiling.rank:
            return False
    return True


def own_label(event: dict[str, Any]) -> tlp.Tlp:
    """A lower bound of the event's label, from its shared TLP tags (the strictest readable
    one; none: CLEAR, since the default given to unlabelled events is at least that). A tag
    on a report, sighting or reference at or below it changes nothing."""
    found = tlp.Tlp.CLEAR
    for tag in event.get("Tag") or []:
        if not isinstance(tag, dict) or tag.get("local") is True:
            continue
        for name in tlp_names([tag]):
            try:
                label = tlp.parse_label(name)
            except tlp.TLPError:
                continue
            if label.rank > found.rank:
                found = label
    return found


def shared_cluster(cluster: dict[str, Any]) -> bool:
    """A cluster the source keeps to itself (MISP's local galaxy cluster, "your organisation
    only") is not kept: fail closed."""
    return not (
        cluster.get("local") in (True, 1, "1", "true")
        or cluster.get("local_only") in (True, 1, "1", "true")
        or str(cluster.get("distribution", "")) == "0"
    )


_GALAXY_NS = uuid_mod.UUID("3f0c5f3e-2a51-4d55-9d0b-6a3f1c2b7e10")


def derived_uuid(name: str) -> str:
    return str(uuid_mod.uuid5(_GALAXY_NS, name))


def check_galaxies(element: dict[str, Any], path: str) -> None:
    """Galaxies kept as MISP exports them, only with what misp-stix and MISP read (a missing
    description is empty, a missing uuid derived from the tag, so that the STIX rendering
    does not fail on them), no cluster the source kept local, no organisation of a
    cluster's author."""
    if "Galaxy" not in element:
        return
    galaxies = []
    for i, galaxy in enumerate(list_of(element, "Galaxy", path)):
        where = f"{path}.Galaxy.{i}"
        if not isinstance(galaxy, dict):
            raise fail(where, "a galaxy must be an object")
        check_text_fields(galaxy, where, ("name", "type", "uuid", "description", "namespace"))
        clusters = []
        for j, cluster in enumerate(list_of(galaxy, "GalaxyCluster", where)):
            cwhere = f"{where}.GalaxyCluster.{j}"
            if not isinstance(cluster, dict):
                raise fail(cwhere, "a cluster must be an object")
            check_text_fields(cluster, cwhere, ("value", "tag_name", "uuid", "type", "description"))
            if not shared_cluster(cluster):
                continue
            keep_fields(cluster, CLUSTER_FIELDS)
            for key in ("description", "value"):  # misp-stix reads each
                cluster.setdefault(key, "")
            if not cluster.get("uuid"):  # MISP exports some without: one derived from its tag
                cluster["uuid"] = derived_uuid(cluster.get("tag_name") or cluster["value"])
            cluster.setdefault("type", galaxy.get("type") or "")
            clusters.append(cluster)
        keep_fields(galaxy, GALAXY_FIELDS)
        for key in ("description", "type"):  # misp-stix reads each
            galaxy.setdefault(key, "")
        if not galaxy.get("uuid"):
            galaxy["uuid"] = derived_uuid("galaxy:" + str(galaxy["type"]))
        galaxy.setdefault("name", galaxy.get("type") or "")
        galaxy["GalaxyCluster"] = clusters
        if clusters:
            galaxies.append(galaxy)
    element["Galaxy"] = galaxies

"""STIX 2.1 ↔ MISP conversion, with misp-stix for the conversion and ``tlp`` for every label.

misp-stix drops or misplaces markings (granular markings, markings on objects that become
galaxy clusters or relationships, unresolvable refs; reference: tlp-stix-taxii §4.4), so the
labels come from the raw bundle: each converted element gets the label of the STIX objects
it came from (matched by uuid), and anything that cannot be matched — the event itself,
galaxy clusters, references — gets the highest label of what was not matched (fail closed).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import warnings
from typing import Any

import orjson

import tlp
from hub.errors import InvalidField, PayloadTooLarge
from hub.intel import snapshots

# The converter and its version, the plan of every STIX → MISP conversion in the lineage.
CONVERTER = f"misp-stix@{importlib.metadata.version('misp-stix')}"
# The External parser matches indicators to observables quadratically (142 s at 10^4).
MAX_EXTERNAL_OBJECTS = 5000
_NOT_CONTENT = {"marking-definition", "identity", "extension-definition", "language-content"}


def _quiet() -> contextlib.AbstractContextManager[Any]:
    """misp-stix prints warnings to stdout; keep them out of the hub's log stream."""
    return contextlib.redirect_stdout(io.StringIO())


def looks_like_stix(doc: Any) -> bool:
    """A bundle, a bundle missing its type, or a single STIX object."""
    if not isinstance(doc, dict) or "Event" in doc or "info" in doc:
        return False
    return isinstance(doc.get("objects"), list) or "--" in str(doc.get("id", ""))


def parse_bundle(body: bytes) -> dict[str, Any]:
    """The submitted JSON if it can be read as STIX at all.

    A bundle without ``"type": "bundle"`` or a lone object is accepted here and quarantined
    by the labelling step (its markings cannot be trusted); what is not STIX is a 4xx.
    """
    bundle = snapshots.parse_body(body)
    if not looks_like_stix(bundle):
        raise InvalidField("not a STIX 2.1 bundle (or object)", field="type")
    for i, obj in enumerate(bundle.get("objects") or []):
        if (
            not isinstance(obj, dict)
            or not isinstance(obj.get("type"), str)
            or not isinstance(obj.get("id"), str)
            or "--" not in obj["id"]
        ):
            raise InvalidField("every STIX object needs a type and an id", field=f"objects.{i}")
    return bundle  # type: ignore[no-any-return]


def uuid_of(stix_id: str) -> str:
    return stix_id.split("--", 1)[1].lower()


def bundle_to_event(bundle: dict[str, Any], labels: tlp.BundleLabels) -> dict[str, Any]:
    """One MISP event from a bundle, labelled from the raw STIX markings."""
    from misp_stix_converter import ExternalSTIX2toMISPParser, InternalSTIX2toMISPParser
    from misp_stix_converter.tools import is_stix2_from_misp, load_stix2_content

    with warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        loaded = load_stix2_content(orjson.dumps(bundle).decode())
        internal = is_stix2_from_misp(loaded.objects)
        if not internal and len(bundle["objects"]) > MAX_EXTERNAL_OBJECTS:
            raise PayloadTooLarge(
                f"a non-MISP STIX bundle of more than {MAX_EXTERNAL_OBJECTS} objects is too "
                "large to convert in one request; split it"
            )
        parser = InternalSTIX2toMISPParser() if internal else ExternalSTIX2toMISPParser()
        parser.load_stix_bundle(loaded)
        parser.parse_stix_bundle(distribution=1, single_event=True)
        event = orjson.loads(parser.misp_event.to_json())
    _drop_empty(event, bundle)
    by_uuid: dict[str, tlp.Tlp] = {}
    for stix_id, label in labels.labels.items():
        if label is not None:
            u = uuid_of(stix_id)
            by_uuid[u] = max(by_uuid.get(u, label), label)
    content = {
        sid: lb
        for sid, lb in labels.labels.items()
        if lb is not None and sid.split("--", 1)[0] not in _NOT_CONTENT
    }
    matched: set[str] = set()
    highest = max(content.values(), default=tlp.Tlp.CLEAR)

    def label_for(uuid: str, fallback: tlp.Tlp) -> tlp.Tlp:
        if uuid in by_uuid:
            matched.add(uuid)
            return by_uuid[uuid]
        return fallback

    for attr in event.get("Attribute", []):
        _set_tlp(attr, label_for(attr["uuid"], highest))
    for obj in event.get("Object", []):
        obj_label = label_for(obj["uuid"], highest)
        for attr in obj.get("Attribute", []):
            _set_tlp(attr, max(label_for(attr["uuid"], obj_label), obj_label))
    unmatched = [lb for sid, lb in content.items() if uuid_of(sid) not in matched]
    own = by_uuid.get(str(event.get("uuid", "")).lower())
    event_label = max(
        [*unmatched, *([own] if own else [])], default=min(content.values(), default=tlp.Tlp.CLEAR)
    )
    _set_tlp(event, event_label)
    event["distribution"] = 1  # a STIX bundle without addressing addresses the community
    return event


def _drop_empty(event: dict[str, Any], bundle: dict[str, Any]) -> None:
    """misp-stix sometimes emits attributes without a value, or an event without a title."""

    def keep(attr: dict[str, Any]) -> bool:
        return attr.get("value") not in (None, "")

    event["Attribute"] = [a for a in event.get("Attribute", []) if keep(a)]
    for obj in event.get("Object", []):
        obj["Attribute"] = [a for a in obj.get("Attribute", []) if keep(a)]
    event["Object"] = [o for o in event.get("Object", []) if o["Attribute"]]
    if not str(event.get("info") or "").strip():
        event["info"] = f"STIX 2.1 bundle {bundle.get('id', '')}".strip()


def _set_tlp(element: dict[str, Any], label: tlp.Tlp) -> None:
    tags = [
        t for t in element.get("Tag", []) if not str(t.get("name", "")).lower().startswith("tlp:")
    ]
    element["Tag"] = [*tags, {"name": label.tag, "local": False}]


def event_to_bundle(event: dict[str, Any]) -> dict[str, Any]:
    """A filtered MISP event (``{"Event": …}``) as a STIX 2.1 bundle, every object marked."""
    from misp_stix_converter import MISPtoSTIX21Parser

    inner = event["Event"]
    with warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        parser = MISPtoSTIX21Parser()
        parser.parse_misp_event({"Event": inner})
        bundle = orjson.loads(parser.bundle.serialize())
    labels: dict[str, tlp.Tlp] = {}

    def tlp_of(element: dict[str, Any]) -> tlp.Tlp | None:
        found = [
            tlp.parse_label(t["name"])
            for t in element.get("Tag", [])
            if str(t.get("name", "")).lower().startswith("tlp:") and ":ex:" not in t["name"].lower()
        ]
        return max(found) if found else None

    event_label = tlp_of(inner) or tlp.Tlp.AMBER_STRICT
    labels[inner["uuid"]] = event_label
    for attr in inner.get("Attribute", []):
        labels[attr["uuid"]] = max(tlp_of(attr) or event_label, event_label)
    for obj in inner.get("Object", []):
        inner_labels = [
            max(tlp_of(a) or event_label, event_label) for a in obj.get("Attribute", [])
        ]
        labels[obj["uuid"]] = max(inner_labels, default=event_label)
    highest = max(labels.values())
    used: set[tlp.Tlp] = set()
    objects = []
    for obj in bundle.get("objects", []):
        if obj.get("type") == "marking-definition":
            if obj["id"] not in tlp.KNOWN_MARKING_IDS:
                objects.append(obj)  # statements and other non-TLP markings stay
            continue
        if obj.get("type") == "extension-definition":
            continue
        label = labels.get(uuid_of(obj["id"]), highest)
        others = [
            ref for ref in obj.get("object_marking_refs", []) if ref not in tlp.KNOWN_MARKING_IDS
        ]
        obj["object_marking_refs"] = [label.stix_id, *others]
        obj.pop("granular_markings", None)
        used.add(label)
        objects.append(obj)
    bundle["objects"] = [tlp.tlp2_marking_definition(label) for label in sorted(used)] + objects
    return bundle

"""TLP policy engine: "may this element go to this recipient over this channel, and why".

Pure: no I/O, no imports from `hub` or `connectors`; the hub calls it on every release and
records every decision, allowed or not (DESIGN.md §3).

Labels are ordered CLEAR < GREEN < AMBER < AMBER+STRICT < RED; WHITE reads as CLEAR. Parsing
is strict about meaning and lenient about spelling:

>>> from tlp import Tlp, parse_label
>>> parse_label("TLP:AMBER+STRICT") is parse_label("tlp:amber-strict") is Tlp.AMBER_STRICT
True
>>> parse_label("tlp:white"), Tlp.RED > Tlp.AMBER_STRICT
(<Tlp.CLEAR: 'clear'>, True)
>>> parse_label("tlp:yellow")
Traceback (most recent call last):
...
tlp.errors.UnknownMarking: 'tlp:yellow' looks like TLP but is not a TLP label

One decision (the recipient is a partner row; the addressing is whom the source sent it to):

>>> from tlp import Addressing, Recipient, Policy, decide
>>> policy = Policy(version="2025-11")
>>> eco = Recipient("org-eco", tier="ecosystem", status="active", tlp_accepted=True)
>>> d = decide(label=Tlp.AMBER, recipient=eco, channel="taxii",
...            addressing=Addressing.community(), source_org_uuid="org-src", policy=policy)
>>> d.allowed, d.reason.value, d.policy_version
(True, 'allowed-community', '2025-11')
>>> d.obligation.sentence == Tlp.AMBER.first_sentence
True
>>> decide(label=Tlp.AMBER_STRICT, recipient=eco, channel="rest",
...        addressing=Addressing.community(), source_org_uuid="org-src", policy=policy).reason.value
'hub-only'

A whole MISP event for one recipient (denied elements removed, effective TLP tag on every
element left, distribution downgraded as MISP does on sync):

>>> from tlp import filter_misp_event
>>> event = {"Event": {"uuid": "e1", "distribution": "2", "Orgc": {"uuid": "org-src"},
...     "Tag": [{"name": "tlp:green"}],
...     "Attribute": [{"uuid": "a1", "type": "ip-dst", "value": "198.51.100.7"},
...                   {"uuid": "a2", "type": "domain", "value": "x.example",
...                    "Tag": [{"name": "tlp:amber"}]}]}}
>>> out = filter_misp_event(event, eco, "misp-sync", policy=policy)
>>> ev = out.event["Event"]
>>> ev["distribution"], [(a["uuid"], a["Tag"][-1]["name"]) for a in ev["Attribute"]]
('1', [('a1', 'tlp:green'), ('a2', 'tlp:amber')])
>>> conn = Recipient("org-conn", tier="connection", status="active", tlp_accepted=True)
>>> [(r.uuid, r.reason.value) for r in filter_misp_event(event, conn, "rest").removed]
[('a2', 'above-tier-ceiling')]

A STIX 2.1 bundle the same way (effective TLP 2.0 marking written on every object):

>>> from tlp import filter_stix_bundle
>>> bundle = {"type": "bundle", "id": "bundle--1", "objects": [{"type": "indicator",
...     "id": "indicator--1", "object_marking_refs":
...     ["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]}]}
>>> out = filter_stix_bundle(bundle, eco, "taxii", source_org_uuid="org-src", policy=policy)
>>> out.bundle["objects"][0]["object_marking_refs"]
['marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421']
>>> filter_stix_bundle(bundle, conn, "taxii", source_org_uuid="org-src").bundle is None
True

Labels at ingest, without a recipient (None = quarantine), and the SQL pre-filter:

>>> from tlp import label_misp_event, audience_for
>>> label_misp_event(event).attributes
{'a1': <Tlp.GREEN: 'green'>, 'a2': <Tlp.AMBER: 'amber'>}
>>> label_misp_event({"uuid": "e2", "Tag": [{"name": "tlp:orange"}]}).event is None
True
>>> audience_for(conn, "rest", policy).max_label
<Tlp.GREEN: 'green'>
"""

from tlp.decide import (
    ALLOWED_REASONS,
    Addressing,
    Audience,
    Channel,
    Decision,
    Obligation,
    Reason,
    Recipient,
    audience_for,
    decide,
    in_scope,
    out_of_scope,
)
from tlp.errors import MalformedInput, MalformedMarking, TLPError, UnknownMarking
from tlp.filter_misp import (
    EventLabels,
    FilteredEvent,
    filter_misp_event,
    iter_misp_events,
    label_misp_event,
    unwrap_event,
)
from tlp.filter_stix import BundleLabels, FilteredBundle, filter_stix_bundle, label_stix_bundle
from tlp.labels import (
    KNOWN_MARKING_IDS,
    TLP1_IDS,
    TLP2_IDS,
    Flag,
    TagMeaning,
    Tlp,
    parse_label,
    parse_tag,
    tlp1_marking_definition,
    tlp2_marking_definition,
)
from tlp.markings import MarkingResolver, Markings, ResolvedMarking, misp_tag_markings
from tlp.policy import DEFAULT_POLICY, STATUSES, TIERS, Policy, SourcePolicy
from tlp.results import Problem, Removed

__all__ = [
    "ALLOWED_REASONS",
    "DEFAULT_POLICY",
    "KNOWN_MARKING_IDS",
    "STATUSES",
    "TIERS",
    "TLP1_IDS",
    "TLP2_IDS",
    "Addressing",
    "Audience",
    "BundleLabels",
    "Channel",
    "Decision",
    "EventLabels",
    "FilteredBundle",
    "FilteredEvent",
    "Flag",
    "MalformedInput",
    "MalformedMarking",
    "MarkingResolver",
    "Markings",
    "Obligation",
    "Policy",
    "Problem",
    "Reason",
    "Recipient",
    "Removed",
    "ResolvedMarking",
    "SourcePolicy",
    "in_scope",
    "out_of_scope",
    "TLPError",
    "TagMeaning",
    "Tlp",
    "UnknownMarking",
    "audience_for",
    "decide",
    "filter_misp_event",
    "filter_stix_bundle",
    "iter_misp_events",
    "label_misp_event",
    "label_stix_bundle",
    "misp_tag_markings",
    "parse_label",
    "parse_tag",
    "tlp1_marking_definition",
    "tlp2_marking_definition",
    "unwrap_event",
]

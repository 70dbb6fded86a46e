"""The whole release matrix, written by hand from DESIGN.md §3 (not from the implementation).

Each row: label, recipient kind (with the addressing that kind implies), and the expected reason
code for each channel, in this order:

    misp-sync  rest  taxii  feed  notify-partner  notify-constituent  export

How the expectations follow from DESIGN.md §3:
- the source always gets its own items back (any channel but an open feed, which is public;
  RED only over REST and notifications, like everyone: "never in MISP sync, TAXII, feeds");
- CLEAR with distribution 1-3 reaches every active partner, agreement or not; open feeds only
  with distribution 3; a sharing group reaches its members only;
- GREEN/AMBER reach addressed community partners (active + TLP agreement) within the tier
  ceiling (core RED, ecosystem AMBER, connection GREEN); AMBER (and so GREEN, CLEAR) may reach
  a partner's constituents through that partner;
- AMBER+STRICT and RED only to organisations a sharing group names; "the community" is not
  naming, so without a sharing group they were addressed to the hub alone (hub-only);
  AMBER+STRICT never to constituents; RED only over REST or a notification to the named
  organisation itself;
- distribution 0 is the hub alone; suspended partners get nothing; no agreement: CLEAR only;
  non-partners (e.g. a sharing-group member that is not a partner) get nothing;
- a constituent is reached only by notify-constituent, and that channel only reaches
  constituents.

Where several rules deny, the reason is the first in decide's documented order
(tlp/decide.py): quarantine, feed rules, channel/recipient mismatch, not active, RED channel,
source, not a partner, AMBER+STRICT forwarding, hub-only, not addressed, agreement,
community, tier ceiling.
"""

from __future__ import annotations

import pytest

from tlp import (
    ALLOWED_REASONS,
    Addressing,
    Channel,
    Policy,
    Reason,
    Recipient,
    Tlp,
    audience_for,
    decide,
)

SOURCE = "org-source"
POLICY = Policy(version="test-matrix-1")

CHANNELS = (
    Channel.MISP_SYNC,
    Channel.REST,
    Channel.TAXII,
    Channel.FEED,
    Channel.NOTIFY_PARTNER,
    Channel.NOTIFY_CONSTITUENT,
    Channel.EXPORT,
)

CODES = {
    "OWN": Reason.SOURCE_RECEIVES_OWN,
    "COM": Reason.ALLOWED_COMMUNITY,
    "NAM": Reason.ALLOWED_NAMED,
    "CON": Reason.ALLOWED_CONSTITUENT,
    "PUB": Reason.ALLOWED_PUBLIC,
    "MIS": Reason.CHANNEL_RECIPIENT_MISMATCH,
    "INA": Reason.RECIPIENT_NOT_ACTIVE,
    "NAP": Reason.NOT_A_PARTNER,
    "RCF": Reason.RED_CHANNEL_FORBIDDEN,
    "SNF": Reason.STRICT_NO_FORWARDING,
    "HUB": Reason.HUB_ONLY,
    "NAD": Reason.NOT_ADDRESSED,
    "NTA": Reason.NO_TLP_AGREEMENT,
    "NIC": Reason.NOT_IN_COMMUNITY,
    "CEIL": Reason.ABOVE_TIER_CEILING,
    "NPUB": Reason.NOT_PUBLIC,
}


def partner(org: str, tier: str | None = "core", *, status: str = "active", accepted: bool = True):
    return Recipient(org, tier=tier, status=status, tlp_accepted=accepted)


CORE = partner("org-core")
SG_NAMING_CORE = Addressing.sharing_group({SOURCE, "org-core", "org-eco", "org-conn"})
SG_WITHOUT_CORE = Addressing.sharing_group({SOURCE, "org-other"})
COMMUNITY = Addressing(1)

# kind -> (recipient, addressing)
KINDS: dict[str, tuple[Recipient, Addressing]] = {
    "source": (partner(SOURCE), COMMUNITY),
    "core": (CORE, COMMUNITY),
    "ecosystem": (partner("org-eco", "ecosystem"), COMMUNITY),
    "connection": (partner("org-conn", "connection"), COMMUNITY),
    "suspended": (partner("org-core", status="suspended"), COMMUNITY),
    "no-agreement": (partner("org-core", accepted=False), COMMUNITY),
    "named-core": (CORE, SG_NAMING_CORE),
    "not-named-core": (CORE, SG_WITHOUT_CORE),
    "constituent": (Recipient.constituent("org-hospital", via=CORE), COMMUNITY),
    "constituent-named": (Recipient.constituent("org-hospital", via=CORE), SG_NAMING_CORE),
    "non-partner": (partner("org-core", None), COMMUNITY),
    "named-ecosystem": (partner("org-eco", "ecosystem"), SG_NAMING_CORE),
    "named-connection": (partner("org-conn", "connection"), SG_NAMING_CORE),
    "hub-only": (CORE, Addressing(0)),
    "all-communities": (CORE, Addressing(3)),
}

# fmt: off
#          label           kind                 sync  rest  taxii feed  np    nc    export
MATRIX = """
clear          source             OWN   OWN   OWN   NAD   OWN   MIS   OWN
clear          core               COM   COM   COM   NAD   COM   MIS   COM
clear          ecosystem          COM   COM   COM   NAD   COM   MIS   COM
clear          connection         COM   COM   COM   NAD   COM   MIS   COM
clear          suspended          INA   INA   INA   NAD   INA   MIS   INA
clear          no-agreement       COM   COM   COM   NAD   COM   MIS   COM
clear          named-core         NAM   NAM   NAM   NAD   NAM   MIS   NAM
clear          not-named-core     NAD   NAD   NAD   NAD   NAD   MIS   NAD
clear          constituent        MIS   MIS   MIS   NAD   MIS   CON   MIS
clear          constituent-named  MIS   MIS   MIS   NAD   MIS   CON   MIS
clear          non-partner        NAP   NAP   NAP   NAD   NAP   MIS   NAP
clear          named-ecosystem    NAM   NAM   NAM   NAD   NAM   MIS   NAM
clear          named-connection   NAM   NAM   NAM   NAD   NAM   MIS   NAM
clear          hub-only           HUB   HUB   HUB   HUB   HUB   MIS   HUB
clear          all-communities    COM   COM   COM   PUB   COM   MIS   COM

green          source             OWN   OWN   OWN   NPUB  OWN   MIS   OWN
green          core               COM   COM   COM   NPUB  COM   MIS   COM
green          ecosystem          COM   COM   COM   NPUB  COM   MIS   COM
green          connection         COM   COM   COM   NPUB  COM   MIS   COM
green          suspended          INA   INA   INA   NPUB  INA   MIS   INA
green          no-agreement       NTA   NTA   NTA   NPUB  NTA   MIS   NTA
green          named-core         NAM   NAM   NAM   NPUB  NAM   MIS   NAM
green          not-named-core     NAD   NAD   NAD   NPUB  NAD   MIS   NAD
green          constituent        MIS   MIS   MIS   NPUB  MIS   CON   MIS
green          constituent-named  MIS   MIS   MIS   NPUB  MIS   CON   MIS
green          non-partner        NAP   NAP   NAP   NPUB  NAP   MIS   NAP
green          named-ecosystem    NAM   NAM   NAM   NPUB  NAM   MIS   NAM
green          named-connection   NAM   NAM   NAM   NPUB  NAM   MIS   NAM
green          hub-only           HUB   HUB   HUB   NPUB  HUB   MIS   HUB
green          all-communities    COM   COM   COM   NPUB  COM   MIS   COM

amber          source             OWN   OWN   OWN   NPUB  OWN   MIS   OWN
amber          core               COM   COM   COM   NPUB  COM   MIS   COM
amber          ecosystem          COM   COM   COM   NPUB  COM   MIS   COM
amber          connection         CEIL  CEIL  CEIL  NPUB  CEIL  MIS   CEIL
amber          suspended          INA   INA   INA   NPUB  INA   MIS   INA
amber          no-agreement       NTA   NTA   NTA   NPUB  NTA   MIS   NTA
amber          named-core         NAM   NAM   NAM   NPUB  NAM   MIS   NAM
amber          not-named-core     NAD   NAD   NAD   NPUB  NAD   MIS   NAD
amber          constituent        MIS   MIS   MIS   NPUB  MIS   CON   MIS
amber          constituent-named  MIS   MIS   MIS   NPUB  MIS   CON   MIS
amber          non-partner        NAP   NAP   NAP   NPUB  NAP   MIS   NAP
amber          named-ecosystem    NAM   NAM   NAM   NPUB  NAM   MIS   NAM
amber          named-connection   CEIL  CEIL  CEIL  NPUB  CEIL  MIS   CEIL
amber          hub-only           HUB   HUB   HUB   NPUB  HUB   MIS   HUB
amber          all-communities    COM   COM   COM   NPUB  COM   MIS   COM

amber+strict   source             OWN   OWN   OWN   NPUB  OWN   MIS   OWN
amber+strict   core               HUB   HUB   HUB   NPUB  HUB   MIS   HUB
amber+strict   ecosystem          HUB   HUB   HUB   NPUB  HUB   MIS   HUB
amber+strict   connection         HUB   HUB   HUB   NPUB  HUB   MIS   HUB
amber+strict   suspended          INA   INA   INA   NPUB  INA   MIS   INA
amber+strict   no-agreement       HUB   HUB   HUB   NPUB  HUB   MIS   HUB
amber+strict   named-core         NAM   NAM   NAM   NPUB  NAM   MIS   NAM
amber+strict   not-named-core     NAD   NAD   NAD   NPUB  NAD   MIS   NAD
amber+strict   constituent        MIS   MIS   MIS   NPUB  MIS   SNF   MIS
amber+strict   constituent-named  MIS   MIS   MIS   NPUB  MIS   SNF   MIS
amber+strict   non-partner        NAP   NAP   NAP   NPUB  NAP   MIS   NAP
amber+strict   named-ecosystem    CEIL  CEIL  CEIL  NPUB  CEIL  MIS   CEIL
amber+strict   named-connection   CEIL  CEIL  CEIL  NPUB  CEIL  MIS   CEIL
amber+strict   hub-only           HUB   HUB   HUB   NPUB  HUB   MIS   HUB
amber+strict   all-communities    HUB   HUB   HUB   NPUB  HUB   MIS   HUB

red            source             RCF   OWN   RCF   RCF   OWN   MIS   RCF
red            core               RCF   HUB   RCF   RCF   HUB   MIS   RCF
red            ecosystem          RCF   HUB   RCF   RCF   HUB   MIS   RCF
red            connection         RCF   HUB   RCF   RCF   HUB   MIS   RCF
red            suspended          INA   INA   INA   RCF   INA   MIS   INA
red            no-agreement       RCF   HUB   RCF   RCF   HUB   MIS   RCF
red            named-core         RCF   NAM   RCF   RCF   NAM   MIS   RCF
red            not-named-core     RCF   NAD   RCF   RCF   NAD   MIS   RCF
red            constituent        MIS   MIS   MIS   RCF   MIS   RCF   MIS
red            constituent-named  MIS   MIS   MIS   RCF   MIS   RCF   MIS
red            non-partner        RCF   NAP   RCF   RCF   NAP   MIS   RCF
red            named-ecosystem    RCF   CEIL  RCF   RCF   CEIL  MIS   RCF
red            named-connection   RCF   CEIL  RCF   RCF   CEIL  MIS   RCF
red            hub-only           RCF   HUB   RCF   RCF   HUB   MIS   RCF
red            all-communities    RCF   HUB   RCF   RCF   HUB   MIS   RCF
"""
# fmt: on


def _rows():
    for line in MATRIX.strip().splitlines():
        if not line.strip():
            continue
        label, kind, *cells = line.split()
        assert len(cells) == len(CHANNELS), line
        for channel, cell in zip(CHANNELS, cells, strict=True):
            yield pytest.param(
                Tlp(label), kind, channel, CODES[cell], id=f"{label}-{kind}-{channel}"
            )


ROWS = list(_rows())


def test_matrix_covers_every_label_kind_and_channel():
    seen = {(p.values[0], p.values[1], p.values[2]) for p in ROWS}
    assert len(seen) == len(ROWS) == 5 * len(KINDS) * len(CHANNELS)


@pytest.mark.parametrize(("label", "kind", "channel", "expected"), ROWS)
def test_release_matrix(label: Tlp, kind: str, channel: Channel, expected: Reason):
    recipient, addressing = KINDS[kind]
    decision = decide(
        label=label,
        recipient=recipient,
        channel=channel,
        addressing=addressing,
        source_org_uuid=SOURCE,
        policy=POLICY,
    )
    assert decision.reason is expected, decision.sentence
    assert decision.allowed is (expected in ALLOWED_REASONS)
    assert decision.policy_version == "test-matrix-1"
    assert decision.label is label
    assert decision.sentence
    if decision.allowed:
        assert decision.obligation is not None
        assert decision.obligation.label is label
        assert decision.obligation.sentence == label.first_sentence
    else:
        assert decision.obligation is None


@pytest.mark.parametrize(("label", "kind", "channel", "expected"), ROWS)
def test_audience_prefilter_agrees_with_decide(label, kind, channel, expected):
    """The SQL pre-filter admits exactly what decide allows."""
    recipient, addressing = KINDS[kind]
    audience = audience_for(recipient, channel, POLICY)
    assert audience.admits(label, addressing, SOURCE) is (expected in ALLOWED_REASONS)


def test_quarantine_is_never_allowed_anywhere():
    for recipient, addressing in KINDS.values():
        for channel in CHANNELS:
            decision = decide(
                label=None,
                recipient=recipient,
                channel=channel,
                addressing=addressing,
                source_org_uuid=SOURCE,
                policy=POLICY,
            )
            assert (decision.allowed, decision.reason) == (False, Reason.QUARANTINE)
            assert not audience_for(recipient, channel, POLICY).admits(None, addressing, SOURCE)


def test_suspended_source_gets_nothing_back():
    """Suspension wins over 'the source receives its own items' (DESIGN §3: gets nothing)."""
    source = partner(SOURCE, status="suspended")
    d = decide(
        label=Tlp.GREEN,
        recipient=source,
        channel="rest",
        addressing=COMMUNITY,
        source_org_uuid=SOURCE,
        policy=POLICY,
    )
    assert d.reason is Reason.RECIPIENT_NOT_ACTIVE


@pytest.mark.parametrize("status", ["prospect", "onboarding", "suspended", "withdrawn"])
def test_only_active_partners_receive(status):
    d = decide(
        label=Tlp.CLEAR,
        recipient=partner("org-x", status=status),
        channel="rest",
        addressing=Addressing(3),
        source_org_uuid=SOURCE,
        policy=POLICY,
    )
    assert d.reason is Reason.RECIPIENT_NOT_ACTIVE


def test_constituent_through_partner_without_agreement_or_ceiling():
    conn = partner("org-conn", "connection")
    via_conn = Recipient.constituent("org-clinic", via=conn)
    no_agreement = Recipient.constituent("org-clinic", via=partner("org-core", accepted=False))
    kwargs = {"channel": "notify-constituent", "source_org_uuid": SOURCE, "policy": POLICY}
    assert decide(label=Tlp.AMBER, recipient=via_conn, addressing=COMMUNITY, **kwargs).reason is (
        Reason.ABOVE_TIER_CEILING
    )
    assert decide(label=Tlp.GREEN, recipient=via_conn, addressing=COMMUNITY, **kwargs).allowed
    assert decide(
        label=Tlp.AMBER, recipient=no_agreement, addressing=COMMUNITY, **kwargs
    ).reason is (Reason.NO_TLP_AGREEMENT)
    assert decide(label=Tlp.CLEAR, recipient=no_agreement, addressing=COMMUNITY, **kwargs).allowed


def test_community_is_policy_data():
    """A policy whose community is the core tier only keeps GREEN/AMBER community items from
    other tiers, but not CLEAR, nor what a sharing group names."""
    core_only = Policy(version="core-only", community_tiers=frozenset({"core"}))
    eco = partner("org-eco", "ecosystem")
    kwargs = {"recipient": eco, "channel": "rest", "source_org_uuid": SOURCE, "policy": core_only}
    assert decide(label=Tlp.GREEN, addressing=COMMUNITY, **kwargs).reason is Reason.NOT_IN_COMMUNITY
    assert decide(label=Tlp.CLEAR, addressing=COMMUNITY, **kwargs).allowed
    named = Addressing.sharing_group({SOURCE, "org-eco"})
    assert decide(label=Tlp.AMBER, addressing=named, **kwargs).reason is Reason.ALLOWED_NAMED
    assert audience_for(eco, "rest", core_only).community_max is Tlp.CLEAR


def test_tier_ceilings_are_policy_data():
    strict = Policy(version="strict", tier_ceilings={"core": Tlp.AMBER, "ecosystem": Tlp.GREEN})
    d = decide(
        label=Tlp.AMBER_STRICT,
        recipient=CORE,
        channel="rest",
        addressing=SG_NAMING_CORE,
        source_org_uuid=SOURCE,
        policy=strict,
    )
    assert d.reason is Reason.ABOVE_TIER_CEILING
    # a tier without a ceiling in the policy receives nothing but its own items
    assert (
        decide(
            label=Tlp.CLEAR,
            recipient=partner("org-conn", "connection"),
            channel="rest",
            addressing=COMMUNITY,
            source_org_uuid=SOURCE,
            policy=strict,
        ).reason
        is Reason.NOT_A_PARTNER
    )


def test_obligation_carries_chr_and_pap_except_for_the_source():
    kwargs = {
        "label": Tlp.AMBER,
        "channel": "rest",
        "addressing": COMMUNITY,
        "source_org_uuid": SOURCE,
        "policy": POLICY,
        "strip_attribution": True,
        "handling": ("PAP:AMBER",),
    }
    to_core = decide(recipient=CORE, **kwargs).obligation
    assert to_core is not None and to_core.strip_attribution and to_core.handling == ("PAP:AMBER",)
    to_source = decide(recipient=partner(SOURCE), **kwargs).obligation
    assert to_source is not None and not to_source.strip_attribution


def test_audience_max_labels():
    assert audience_for(CORE, "rest", POLICY).max_label is Tlp.RED
    assert audience_for(CORE, "taxii", POLICY).max_label is Tlp.AMBER_STRICT
    assert audience_for(CORE, "rest", POLICY).community_max is Tlp.AMBER
    assert audience_for(partner("x", accepted=False), "rest", POLICY).max_label is Tlp.CLEAR
    assert audience_for(partner("x", status="suspended"), "rest", POLICY).max_label is None
    assert audience_for(CORE, "feed", POLICY).community_distributions == frozenset({3})
    constituent = Recipient.constituent("c", via=CORE)
    assert audience_for(constituent, "notify-constituent", POLICY).max_label is Tlp.AMBER


@pytest.mark.parametrize(
    "bad",
    [
        {"tier": "platinum"},
        {"status": "dormant"},
        {"org_uuid": ""},
    ],
)
def test_recipient_rejects_values_outside_the_enumerations(bad):
    fields = {"org_uuid": "o", "tier": "core", "status": "active", "tlp_accepted": True, **bad}
    with pytest.raises(ValueError):
        Recipient(**fields)


def test_unknown_channel_is_an_error():
    with pytest.raises(ValueError):
        decide(
            label=Tlp.CLEAR,
            recipient=CORE,
            channel="carrier-pigeon",
            addressing=COMMUNITY,
            source_org_uuid=SOURCE,
            policy=POLICY,
        )


def test_addressing_narrowing():
    sg_a = Addressing.sharing_group({"a", "b"})
    sg_b = Addressing.sharing_group({"b", "c"})
    assert sg_a.narrow(sg_b).members == frozenset({"b"})
    assert Addressing(3).narrow(Addressing(1)).distribution == 1
    assert Addressing(3).narrow(sg_a) is sg_a
    assert sg_a.narrow(Addressing(2)) is sg_a
    assert sg_a.narrow(Addressing(0)).distribution == 0
    with pytest.raises(ValueError):
        Addressing(5)

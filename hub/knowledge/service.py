"""Knowledge products: drafting, review (by someone other than the author), publication
through the ordinary store and release path, lineage, and the review flag a withdrawn source
raises.

States: ``draft`` → ``reviewed`` → ``published``; a published product whose source was
withdrawn becomes ``needs-review`` and goes back through review before it is published
again. Every step is in the audit log with who did it.
"""

from __future__ import annotations

import uuid as uuid_mod
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.auth.principal import Principal
from hub.context import current_request_id
from hub.errors import Conflict, Forbidden, InvalidField, NotFound
from hub.intel import service as intel
from hub.knowledge import attribution, publication, repository, taxonomy
from hub.knowledge.schemas import ProductIn
from hub.lineage import service as lineage
from hub.models import (
    Event,
    EventVersion,
    KnowledgeProduct,
    KnowledgeSource,
    KnowledgeVersion,
    Partner,
)
from hub.models.base import utcnow
from hub.sharing.recipients import Recipient
from hub.sharing.view import Gate
from hub.vocabulary import Role

DRAFT, REVIEWED, PUBLISHED, NEEDS_REVIEW = "draft", "reviewed", "published", "needs-review"
CHANNEL = "knowledge"


def is_staff(who: Principal) -> bool:
    return who.role in (Role.OPERATOR, Role.AUDITOR)


def owns(who: Principal, product: KnowledgeProduct) -> bool:
    return who.partner_id == product.owner_partner_id


def create_draft(
    session: Session, *, who: Principal, owner: Partner, body: ProductIn, policy: tlp.Policy
) -> KnowledgeProduct:
    """A new product, version 1, a draft of ``owner`` (the caller's organisation)."""
    _check_vocabulary(body)
    product_uuid = str(uuid_mod.uuid4())
    product = KnowledgeProduct(
        uuid=product_uuid,
        owner_partner_id=owner.id,
        owner_uuid=owner.uuid,
        state=DRAFT,
        version=1,
        # random, not derived from the product's uuid: nobody can claim the uuid first
        event_uuid=str(uuid_mod.uuid4()),
        report_uuid=str(uuid_mod.uuid4()),
    )
    session.add(product)
    session.flush()
    _add_version(
        session, product=product, version=1, who=who, owner=owner, body=body, policy=policy
    )
    _audit(session, "knowledge.draft", product, who, {"version": 1})
    return product


def new_version(
    session: Session,
    *,
    who: Principal,
    product: KnowledgeProduct,
    body: ProductIn,
    policy: tlp.Policy,
) -> KnowledgeProduct:
    """A new draft version of a product (its published version stays out until this one is
    reviewed and published)."""
    _may_edit(who, product)
    _check_vocabulary(body)
    owner = session.get(Partner, product.owner_partner_id)
    assert owner is not None
    product.version += 1
    product.state = DRAFT
    product.changed_at = utcnow()
    _add_version(
        session,
        product=product,
        version=product.version,
        who=who,
        owner=owner,
        body=body,
        policy=policy,
    )
    _audit(session, "knowledge.draft", product, who, {"version": product.version})
    return product


def review(
    session: Session, *, who: Principal, product: KnowledgeProduct, note: str | None
) -> KnowledgeProduct:
    """Approve the current version: by an operator or a key of the owner, never its author."""
    _may_edit(who, product)
    if product.state not in (DRAFT, NEEDS_REVIEW):
        raise Conflict(f"a {product.state} product cannot be reviewed")
    version = repository.version_of(session, product, product.version)
    if who.actor == version.author:
        raise Forbidden("the reviewer must be someone other than the author")
    version.reviewed_by, version.reviewed_org = who.actor, who.partner_uuid
    version.reviewed_at, version.review_note = utcnow(), note
    product.state, product.changed_at = REVIEWED, utcnow()
    _audit(session, "knowledge.review", product, who, {"version": version.version, "note": note})
    return product


def publish(
    session: Session, *, who: Principal, product: KnowledgeProduct, policy: tlp.Policy
) -> KnowledgeProduct:
    """Publish the reviewed version as the product's event (ingested as the owner's, through
    the ordinary store), then record its lineage."""
    _may_edit(who, product)
    if product.state != REVIEWED:
        raise Conflict(f"only a reviewed product can be published (this one is {product.state})")
    version = repository.version_of(session, product, product.version)
    owner = session.get(Partner, product.owner_partner_id)
    assert owner is not None
    sources = repository.sources_of(session, version)
    _recheck_credits(session, sources, product_tlp=version.tlp)
    existing = session.scalar(select(Event).where(Event.uuid == product.event_uuid))
    payload = publication.event_of(product, version, [s.credit for s in sources], existing=existing)
    [outcome] = intel.ingest_events(
        session, payloads=[payload], source=owner, actor=who.actor, channel=CHANNEL, policy=policy
    )
    if outcome.status not in ("stored", "updated") or outcome.version is None:
        raise Conflict(f"the product could not be published: {outcome.detail or outcome.status}")
    version.published_by, version.published_at = who.actor, utcnow()
    version.event_version = outcome.version
    product.state, product.published_version = PUBLISHED, version.version
    product.changed_at = utcnow()
    _record_lineage(session, product, version, sources, who=who, owner=owner)
    _audit(
        session,
        "knowledge.publish",
        product,
        who,
        {"version": version.version, "event": product.event_uuid, "event_version": outcome.version},
    )
    return product


def _recheck_credits(
    session: Session, sources: Sequence[KnowledgeSource], *, product_tlp: str
) -> None:
    """Credits were written with the draft; an item may since have been narrowed, marked
    TLP:EX:CHR or withdrawn. A named credit whose item no longer reaches every recipient
    becomes anonymous (never the other way round)."""
    for source in sources:
        if not source.named or source.item_uuid is None:
            continue
        found = repository.item(session, source.item_uuid)
        still = found is not None and not _withdrawn(*found)
        if still and found is not None:
            event, attribute = found
            still = not attribution.is_chr(event, attribute) and (
                attribution.reaches_every_recipient(event, attribute, product_tlp)
            )
        if not still:
            partner = repository.partner_by_uuid(session, source.org_uuid)
            source.named, source.credit = False, attribution.anonymous(session, partner)


def _withdrawn(event: Event, attribute: Any) -> bool:
    if attribute is not None:
        return bool(attribute.deleted)
    return bool(event.withdrawn_ts) and event.attribute_count == 0


def flag_withdrawn(
    session: Session, *, item_uuids: Sequence[str], event_uuid: str | None, actor: str
) -> list[str]:
    """Products whose current or published version used a withdrawn item (or, with
    ``event_uuid``, anything of a withdrawn event) need review again; returns their uuids."""
    flagged: dict[str, KnowledgeProduct] = {}
    rows = repository.products_using(session, item_uuids=item_uuids, event_uuid=event_uuid)
    for product, version, source in rows:
        if version.version not in (product.version, product.published_version):
            continue
        if product.state == NEEDS_REVIEW and product.uuid not in flagged:
            continue
        product.state, product.changed_at = NEEDS_REVIEW, utcnow()
        flagged[product.uuid] = product
        audit.append(
            session,
            [
                audit.Record(
                    action="knowledge.needs-review",
                    actor=actor,
                    object_ref=f"knowledge:{product.uuid}",
                    request_id=current_request_id(),
                    details={"version": version.version, "withdrawn": source.item_uuid},
                )
            ],
        )
    return sorted(flagged)


def _may_edit(who: Principal, product: KnowledgeProduct) -> None:
    if who.role is Role.OPERATOR or (owns(who, product) and who.role is not Role.AUDITOR):
        return
    raise NotFound(f"no knowledge product {product.uuid}")  # others do not learn it exists


def _check_vocabulary(body: ProductIn) -> None:
    if body.kind not in taxonomy.kinds():
        raise InvalidField(
            f"unknown kind {body.kind!r}; see GET /api/v1/knowledge/taxonomy", field="kind"
        )
    themes = taxonomy.themes()
    for i, theme in enumerate(body.themes):
        if theme not in themes:
            raise InvalidField(f"unknown theme {theme!r}", field=f"themes.{i}")
    if len(set(body.themes)) != len(body.themes):
        raise InvalidField("a theme is given twice", field="themes")


def _add_version(
    session: Session,
    *,
    product: KnowledgeProduct,
    version: int,
    who: Principal,
    owner: Partner,
    body: ProductIn,
    policy: tlp.Policy,
) -> KnowledgeVersion:
    row = KnowledgeVersion(
        product_id=product.id,
        version=version,
        kind=body.kind,
        title=body.title,
        body=body.body,
        tlp=body.tlp,
        themes=list(body.themes),
        author=who.actor,
        author_org=who.partner_uuid,
    )
    session.add(row)
    session.flush()
    credits = [
        _credit(session, i, source, who=who, owner=owner, product_tlp=body.tlp, policy=policy)
        for i, source in enumerate(body.sources)
    ]
    session.execute(
        insert(KnowledgeSource),
        [
            {
                "version_id": row.id,
                "item_uuid": c.item_uuid,
                "event_uuid": c.event_uuid,
                "org_uuid": c.org_uuid,
                "named": c.named,
                "credit": c.credit,
            }
            for c in credits
        ],
    )
    return row


def _credit(
    session: Session,
    i: int,
    source: Any,
    *,
    who: Principal,
    owner: Partner,
    product_tlp: str,
    policy: tlp.Policy,
) -> attribution.Credit:
    """One source, checked: an item the author may see (else 422 as if it did not exist),
    whose label the product's does not lower unless it is the owner's own."""
    if source.organisation is not None:
        partner = repository.partner_by_uuid(session, source.organisation)
        if partner is None:
            raise InvalidField("no such organisation", field=f"sources.{i}.organisation")
        return attribution.for_organisation(session, partner=partner, asked_named=source.named)
    found = repository.item(session, source.item.lower())
    field = f"sources.{i}.item"
    if found is None or not _visible(found, who, policy):
        raise InvalidField("no item with this uuid that you may see", field=field)
    event, attribute = found
    if (
        event.orgc_uuid != owner.uuid
        and attribution.item_rank(event, attribute) > tlp.Tlp(product_tlp).rank
    ):
        raise InvalidField(
            "a product may not carry a lower TLP label than a source of another organisation",
            field="tlp",
        )
    return attribution.for_item(
        session, event=event, attribute=attribute, asked_named=source.named, tlp_=product_tlp
    )


def _visible(found: tuple[Event, Any], who: Principal, policy: tlp.Policy) -> bool:
    """Whether the author's organisation receives the item over REST (live, decided)."""
    event, attribute = found
    gate = Gate(Recipient.of_principal(who), tlp.Channel.REST, policy)
    if not gate.event(event).allowed:
        return False
    if attribute is None:
        return True
    if attribute.deleted:
        return False
    rank = attribution.item_rank(event, attribute)
    addressing = attribution.item_addressing(event, attribute)
    return gate.decide(rank, addressing, event.orgc_uuid).allowed


def _record_lineage(
    session: Session,
    product: KnowledgeProduct,
    version: KnowledgeVersion,
    sources: Sequence[KnowledgeSource],
    *,
    who: Principal,
    owner: Partner,
) -> None:
    """PROV: the product version (``knowledge`` artifact) derived from the versions of the
    source events it used, and the product's event version derived from it."""
    act = lineage.activity(
        session,
        kind="compose",
        agent=who.actor,
        plan="knowledge:publish",
        on_behalf_of=owner.uuid,
        params={"product": product.uuid, "version": version.version},
    )
    art = lineage.artifact(
        session,
        kind="knowledge",
        external_id=product.uuid,
        version=version.version,
        generated_by=act,
        source_uuid=owner.uuid,
        tlp=version.tlp,
    )
    used = []
    for event_uuid in sorted({s.event_uuid for s in sources if s.event_uuid}):
        event = session.scalar(select(Event).where(Event.uuid == event_uuid))
        if event is None:
            continue
        ev_version = session.scalar(
            select(EventVersion).where(
                EventVersion.event_id == event.id, EventVersion.version == event.version
            )
        )
        if ev_version is not None:
            used.append(lineage.event_version_artifact(session, ev_version, event_uuid))
    lineage.derive(session, derived=art, sources=used, rel="derived_from", by=act)
    published = lineage.find_artifact(
        session, kind="event", external_id=product.event_uuid, version=version.event_version or 0
    )
    if published is not None:
        lineage.derive(session, derived=published, sources=[art], rel="derived_from", by=act)


def _audit(
    session: Session,
    action: str,
    product: KnowledgeProduct,
    who: Principal,
    details: dict[str, Any],
) -> None:
    audit.append(
        session,
        [
            audit.Record(
                action=action,
                actor=who.actor,
                object_ref=f"knowledge:{product.uuid}",
                request_id=current_request_id(),
                details=details,
            )
        ],
    )

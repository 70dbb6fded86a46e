"""Lessons learned of a closed incident case turned into a knowledge product (issue #19).

The case itself belongs to ``hub.incidents`` (a sibling this package does not import): the
caller hands over what the case may give (``CaseLessons``, made by
``hub.incidents.cases.lessons_of`` for a caller allowed to close the case). The product is an
ordinary draft of the caller's organisation (``service.create_draft``: vocabulary, sources
and credits checked as for any product) that goes through review and publication like any
other. Its label is the case's or stricter; a case the community may not receive as a
whole (AMBER+STRICT, RED: named recipients only) cannot become a product. Its sources are
the case's linked items the author may receive (credited by the knowledge rules: TLP:EX:CHR
and narrowly addressed items anonymously) and the case's opener, credited anonymously
unless asked otherwise (a partner's incident is not announced to the community by name) —
so are the opener's own linked items, whose credit would name it.
The lineage records the product's first version as derived from the case.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

import tlp
from hub.audit import service as audit
from hub.auth.principal import Principal
from hub.context import current_request_id
from hub.errors import Conflict, InvalidField
from hub.knowledge import repository, service
from hub.knowledge.schemas import ProductIn, SourceIn
from hub.lineage import service as lineage
from hub.models import KnowledgeProduct, LineageArtifact, LineageDerivation, Partner

#: The kinds a case's lessons make (issue #19: a best practice or an analysis).
KINDS = ("best-practice", "analysis")
#: The labels a product may carry (``schemas.ProductTlp``), least strict first.
PRODUCT_LABELS = ("clear", "green", "amber")
CASE_KIND = "incident-case"


@dataclass(frozen=True, slots=True)
class CaseLessons:
    """What a closed case gives its product: nothing the caller could not read on the case."""

    uuid: str
    title: str
    tlp: str
    lessons_learned: str
    opener_uuid: str
    item_uuids: list[str] = field(default_factory=list)  # linked events the caller receives


def labels_for(case_tlp: str) -> list[str]:
    """The labels a product of a case with this label may carry (its own or stricter)."""
    rank = tlp.parse_label(f"tlp:{case_tlp}").rank
    return [label for label in PRODUCT_LABELS if tlp.Tlp(label).rank >= rank]


def draft_from_case(
    session: Session,
    *,
    who: Principal,
    owner: Partner,
    case: CaseLessons,
    kind: str = "best-practice",
    label: str | None = None,
    title: str | None = None,
    body: str | None = None,
    themes: list[str] | None = None,
    name_opener: bool = False,
    policy: tlp.Policy,
) -> KnowledgeProduct:
    """A draft product of ``owner`` from the case's lessons; 409 when the case made one
    already or its label cannot go to the community, 422 naming a wrong field."""
    label = _checked_label(session, case, label, kind)
    product_in = _product_in(session, case, kind, label, title, body, themes, name_opener)
    product = service.create_draft(session, who=who, owner=owner, body=product_in, policy=policy)
    _record(session, who=who, owner=owner, case=case, product=product, label=label, kind=kind)
    return product


def _checked_label(session: Session, case: CaseLessons, label: str | None, kind: str) -> str:
    """The product's label (the case's by default): 409 when the case made a product already
    or its label cannot go to the community, 422 for a label looser than the case's or an
    unknown kind."""
    if products_from_case(session, case.uuid):
        raise Conflict(f"incident case {case.uuid} has a knowledge product already")
    allowed = labels_for(case.tlp)
    if not allowed:
        raise Conflict(
            f"a TLP:{case.tlp.upper()} case names its recipients; a knowledge product goes to "
            "the community, so its lessons cannot become one"
        )
    label = label or allowed[0]
    if label not in allowed:
        raise InvalidField(
            f"the product's label must be the case's (TLP:{case.tlp.upper()}) or stricter: "
            + ", ".join(allowed),
            field="tlp",
        )
    if kind not in KINDS:
        raise InvalidField(f"kind must be one of {', '.join(KINDS)}", field="kind")
    return label


def _product_in(
    session: Session,
    case: CaseLessons,
    kind: str,
    label: str,
    title: str | None,
    body: str | None,
    themes: list[str] | None,
    name_opener: bool,
) -> ProductIn:
    """The draft's body: the lessons, the opener and the linked items as its sources (the
    opener's own items credited as the opener is)."""
    sources = [SourceIn(organisation=case.opener_uuid, named=name_opener)]
    sources += [
        SourceIn(item=u, named=name_opener or _creator(session, u) != case.opener_uuid)
        for u in case.item_uuids
    ]
    try:
        return ProductIn(
            kind=kind,
            title=(title or f"Lessons learned: {case.title}")[:255],
            body=body or case.lessons_learned,
            tlp=label,  # type: ignore[arg-type]  # checked against PRODUCT_LABELS above
            themes=themes or [],
            sources=sources[:200],  # ProductIn's limit; a case links few items
        )
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidField(f"{where}: {first['msg']}", field=where) from None


def _record(
    session: Session,
    *,
    who: Principal,
    owner: Partner,
    case: CaseLessons,
    product: KnowledgeProduct,
    label: str,
    kind: str,
) -> None:
    """The product's lineage (derived from the case, by a ``lessons`` activity) and its
    audit entry."""
    act = lineage.activity(
        session,
        kind="lessons",
        agent=who.actor,
        plan="knowledge:lessons",
        on_behalf_of=owner.uuid,
        params={"case": case.uuid, "product": product.uuid},
    )
    case_art = lineage.artifact(
        session,
        kind=CASE_KIND,
        external_id=case.uuid,
        version=1,
        generated_by=None,
        source_uuid=case.opener_uuid,
        tlp=case.tlp,
    )
    art = lineage.artifact(
        session,
        kind="knowledge",
        external_id=product.uuid,
        version=1,
        generated_by=act,
        source_uuid=owner.uuid,
        tlp=label,
    )
    lineage.derive(session, derived=art, sources=[case_art], rel="derived_from", by=act)
    audit.append(
        session,
        [
            audit.Record(
                action="knowledge.from-case",
                actor=who.actor,
                object_ref=f"knowledge:{product.uuid}",
                request_id=current_request_id(),
                details={"case": case.uuid, "tlp": label, "kind": kind},
            )
        ],
    )


def _creator(session: Session, item_uuid: str) -> str | None:
    found = repository.item(session, item_uuid)
    return found[0].orgc_uuid if found is not None else None


def products_from_case(session: Session, case_uuid: str) -> list[KnowledgeProduct]:
    """The products whose lineage derives from the case (its lessons), oldest first."""
    case_art, product_art = aliased(LineageArtifact), aliased(LineageArtifact)
    uuids = (
        select(product_art.external_id)
        .join(LineageDerivation, LineageDerivation.derived_id == product_art.id)
        .join(case_art, case_art.id == LineageDerivation.source_id)
        .where(
            case_art.kind == CASE_KIND,
            case_art.external_id == case_uuid,
            product_art.kind == "knowledge",
        )
    )
    rows = session.scalars(
        select(KnowledgeProduct)
        .where(KnowledgeProduct.uuid.in_(uuids))
        .order_by(KnowledgeProduct.id)
    )
    return list(rows)


def case_of_product(session: Session, product_uuid: str) -> str | None:
    """The incident case a product was made from (lineage backwards), if any."""
    case_art, product_art = aliased(LineageArtifact), aliased(LineageArtifact)
    return session.scalar(
        select(case_art.external_id)
        .join(LineageDerivation, LineageDerivation.source_id == case_art.id)
        .join(product_art, product_art.id == LineageDerivation.derived_id)
        .where(
            case_art.kind == CASE_KIND,
            product_art.kind == "knowledge",
            product_art.external_id == product_uuid,
        )
        .limit(1)
    )

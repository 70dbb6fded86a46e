"""The product workflow (draft → reviewed → published, who and when) and its validation:
bad input is a 4xx naming the field, and nothing of it is written."""

from __future__ import annotations

from sqlalchemy import func, select

from hub.models import AuditEntry, KnowledgeProduct, KnowledgeSource, KnowledgeVersion
from tests.builders import event
from tests.hub.knowledge.conftest import headers, product_body, publish, source_event, submit


def _counts(maker) -> tuple[int, int, int]:
    with maker() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(m))
            for m in (KnowledgeProduct, KnowledgeVersion, KnowledgeSource)
        )


def test_draft_review_publish_records_who_and_when(client, people, maker) -> None:
    item = submit(client, people["source_key"], source_event())
    r = client.post(
        "/api/v1/knowledge",
        json=product_body([{"item": item}]),
        headers=headers(people["author"]),
    )
    assert r.status_code == 201, r.text
    made = r.json()
    uuid = made["uuid"]
    assert made["state"] == "draft" and made["version"] == 1
    assert made["workflow"]["reviewed_by"] is None and made["event_uuid"] is None
    # publishing before review, or reviewing one's own draft, is refused
    r = client.post(f"/api/v1/knowledge/{uuid}/publish", headers=headers(people["author"]))
    assert r.status_code == 409, r.text
    r = client.post(f"/api/v1/knowledge/{uuid}/review", json={}, headers=headers(people["author"]))
    assert r.status_code == 403, r.text
    # another organisation cannot review (it does not even learn the draft exists)
    r = client.post(
        f"/api/v1/knowledge/{uuid}/review", json={}, headers=headers(people["green_key"])
    )
    assert r.status_code == 404
    r = client.get(f"/api/v1/knowledge/{uuid}", headers=headers(people["green_key"]))
    assert r.status_code == 404
    r = client.post(
        f"/api/v1/knowledge/{uuid}/review",
        json={"note": "checked the sources"},
        headers=headers(people["reviewer"]),
    )
    assert r.status_code == 200, r.text
    reviewed = r.json()
    assert reviewed["state"] == "reviewed"
    assert reviewed["workflow"]["reviewed_by"] and reviewed["workflow"]["reviewed_at"]
    assert reviewed["workflow"]["reviewed_by"] != reviewed["workflow"]["author"]
    r = client.post(f"/api/v1/knowledge/{uuid}/publish", headers=headers(people["author"]))
    assert r.status_code == 200, r.text
    published = r.json()
    assert r.headers["X-Hub-TLP"] == "TLP:GREEN"
    assert published["state"] == "published" and published["event_uuid"]
    assert published["workflow"]["published_at"] and published["workflow"]["event_version"] == 1
    with maker() as s:
        actions = set(
            s.scalars(select(AuditEntry.action).where(AuditEntry.object_ref == f"knowledge:{uuid}"))
        )
    assert actions == {"knowledge.draft", "knowledge.review", "knowledge.publish"}
    # a new version is a draft again, the published one stays
    r = client.post(
        f"/api/v1/knowledge/{uuid}/versions",
        json=product_body([{"item": item}], title="Revised"),
        headers=headers(people["author"]),
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 2 and r.json()["state"] == "draft"
    assert r.json()["workflow"]["published_version"] == 1


def test_a_published_product_changes_only_through_review(client, people) -> None:
    item = submit(client, people["source_key"], source_event())
    product = publish(client, people, product_body([{"item": item}]))
    got = client.get(f"/api/v1/events/{product['event_uuid']}", headers=headers(people["author"]))
    edited = got.json()
    edited["Event"]["timestamp"] = str(int(edited["Event"]["timestamp"]) + 5)
    edited["Event"]["EventReport"][0]["content"] = "something never reviewed"
    edited["Event"]["EventReport"][0]["timestamp"] = edited["Event"]["timestamp"]
    r = client.post("/api/v1/events", json=edited, headers=headers(people["author"]))
    assert r.status_code == 409, r.text
    again = client.get(
        f"/api/v1/events/{product['event_uuid']}", headers=headers(people["green_key"])
    )
    assert "never reviewed" not in again.text and "VPN credentials" in again.text


def test_bad_input_names_the_field_and_writes_nothing(client, people, maker, factory) -> None:
    item = submit(client, people["source_key"], source_event())
    amber = submit(client, people["source_key"], source_event("amber"))
    hidden = submit(client, people["source_key"], event("hub only", distribution=0, tlp="green"))
    cases = [
        (product_body([{"item": item}], kind="essay"), "kind"),
        (product_body([{"item": item}], themes=["ot", "astrology"]), "themes.1"),
        (product_body([{"item": "00000000-0000-4000-8000-000000000000"}]), "sources.0.item"),
        (product_body([{"item": item}, {"item": hidden}]), "sources.1.item"),
        (product_body([{"item": amber}]), "tlp"),  # a GREEN product from an AMBER item
        (product_body([{"item": item}], tlp="red"), "tlp"),
        (product_body([]), "sources"),
        (product_body([{"item": item, "organisation": item}]), "sources.0"),
    ]
    for body, field in cases:
        r = client.post("/api/v1/knowledge", json=body, headers=headers(people["author"]))
        assert r.status_code == 422, (field, r.text)
        assert (r.json()["field"] or "").endswith(field), (field, r.json())
    assert _counts(maker) == (0, 0, 0)


def test_taxonomy_is_listed_and_tags_follow_it(client, people) -> None:
    r = client.get("/api/v1/knowledge/taxonomy", headers=headers(people["green_key"]))
    assert r.status_code == 200
    doc = r.json()
    assert doc["namespace"] == "cwn-knowledge"
    themes = {e["value"] for g in doc["values"] if g["predicate"] == "theme" for e in g["entry"]}
    assert {"ot", "supply-chain"} <= themes
    r = client.get("/api/v1/knowledge/taxonomy")
    assert r.status_code == 401


def test_cli_lists_the_taxonomy_as_machine_tags() -> None:
    from typer.testing import CliRunner

    from hub.cli import app

    result = CliRunner().invoke(app, ["knowledge", "themes"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        'cwn-knowledge:theme="ot"\tOperational technology and industrial control systems' in lines
    )
    assert sum(line.startswith('cwn-knowledge:kind="') for line in lines) == 5

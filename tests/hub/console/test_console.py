"""The console over HTTP: sign-in, the session cookie, CSRF, roles, and every action going
through the same services and audit entries as the API (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.console import session as cookies
from hub.db import session_scope
from hub.main import create_app
from hub.models import (
    ApiKey,
    AuditEntry,
    Connection,
    ConnectionJob,
    Event,
    Partner,
    PartnerChange,
    QuarantineItem,
)
from hub.models.base import utcnow
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.conftest import TEST_SECRET
from tests.hub.console.conftest import csrf_of, form_token, hold_in_quarantine, sign_in
from tests.hub.notifications.conftest import desk  # noqa: F401 - the DSN job runner

PAGES = [
    "/console/",
    "/console/coverage",
    "/console/coverage/cell?function=information-sharing&sector=health",
    "/console/partners",
    "/console/quarantine",
    "/console/connections",
    "/console/notifications",
    "/console/audit",
    "/console/items/5f3c0ad2-0000-4000-8000-000000000000",
    "/console/coverage.csv",
]


def status_of(maker, partner: Partner) -> str:
    with maker() as s:
        return s.scalar(select(Partner.status).where(Partner.id == partner.id))


class TestSignIn:
    def test_every_page_needs_a_session(self, client: TestClient) -> None:
        for page in PAGES:
            r = client.get(page, follow_redirects=False)
            assert r.status_code == 303, page
            assert r.headers["location"].startswith("/console/sign-in?next=")
        for form in ("/console/partners/x/status", "/console/quarantine/x/release"):
            r = client.post(form, data={"csrf": "x"}, follow_redirects=False)
            assert r.status_code == 303 and "/console/sign-in" in r.headers["location"]

    def test_the_form_has_one_key_field_then_a_cookie(self, client, operator_key) -> None:
        page = client.get("/console/sign-in")
        assert page.headers["content-type"].startswith("text/html")
        assert page.text.count('name="key"') == 1
        r = sign_in(client, operator_key)
        assert r.status_code == 303 and r.headers["location"] == "/console/"
        cookie = next(
            h for h in r.headers.get_list("set-cookie") if h.startswith(cookies.COOKIE + "=")
        )
        attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert {"httponly", "path", "max-age"} <= attrs and "secure" not in attrs
        assert "samesite=strict" in cookie.lower() and "path=/console" in cookie.lower()
        assert operator_key not in cookie  # the cookie names the key, never holds it
        home = client.get("/console/")
        assert home.status_code == 200 and "Overview" in home.text
        assert home.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in home.headers["content-security-policy"]

    def test_secure_cookie_behind_https(self, settings, engine, operator_key) -> None:
        app = create_app(
            settings.model_copy(update={"public_url": "https://hub.example.nl"}), engine=engine
        )
        with TestClient(app, base_url="https://testserver") as client:
            r = sign_in(client, operator_key)
            assert r.status_code == 303, r.text
        cookie = next(
            h for h in r.headers.get_list("set-cookie") if h.startswith(cookies.COOKIE + "=")
        )
        assert "secure" in cookie.lower()

    def test_sync_and_exercise_keys_open_nothing(self, client, factory, maker) -> None:
        from hub.exercises import service as exercises

        partner = factory.partner("Exercising CSIRT")
        with session_scope(maker) as s:
            drill = exercises.create(s, actor="test", name="Drill", participants=[partner.uuid])
            issued, _ = exercises.create_key(
                s,
                drill,
                partner_ref=partner.uuid,
                role=Role.PARTNER,
                actor="test",
                secret=TEST_SECRET,
            )
        for key in (factory.key(Role.SYNC), issued.key):
            r = sign_in(client, key)
            assert r.status_code == 403 and "not machine or exercise keys" in r.text
            assert cookies.COOKIE not in client.cookies
            assert client.get("/console/", follow_redirects=False).status_code == 303

    def test_a_partner_opens_only_its_pages(self, client, factory) -> None:
        r = sign_in(client, factory.key(Role.PARTNER))
        assert r.status_code == 303
        home = client.get("/console/", follow_redirects=False)
        assert home.status_code == 303 and home.headers["location"] == "/console/incidents"
        for page in PAGES[1:]:
            r = client.get(page, follow_redirects=False)
            assert r.status_code == 403, page
            assert "for operators and auditors" in r.text
        assert "Quarantine" not in client.get("/console/incidents").text  # not in its menu
        token = form_token(client, "/console/incidents")
        r = client.post(
            "/console/quarantine/x/reject",
            data={"csrf": token, "reason": "x"},
            follow_redirects=False,
        )
        assert r.status_code == 403

    def test_a_wrong_key_is_refused(self, client, operator_key) -> None:
        r = sign_in(client, "x" * 40)
        assert r.status_code == 401 and cookies.COOKIE not in client.cookies
        r = sign_in(client, "")
        assert r.status_code == 401

    def test_sign_in_needs_its_form_token(self, client, operator_key) -> None:
        r = client.post(
            "/console/sign-in", data={"key": operator_key, "csrf": "forged"}, follow_redirects=False
        )
        assert r.status_code == 403 and cookies.COOKIE not in client.cookies
        # a page on another site (browsers send its Origin) cannot sign anyone in
        r = client.post(
            "/console/sign-in",
            data={"key": operator_key},
            headers={"Origin": "https://evil.example"},
            follow_redirects=False,
        )
        assert r.status_code == 403 and cookies.COOKIE not in client.cookies

    def test_a_script_posts_just_the_key(self, client, operator_key) -> None:
        r = client.post("/console/sign-in", data={"key": operator_key}, follow_redirects=False)
        assert r.status_code == 303 and cookies.COOKIE in client.cookies
        assert client.get("/console/partners").status_code == 200

    def test_after_a_wrong_key_the_form_works_again(self, client, operator_key) -> None:
        page = client.get("/console/sign-in")
        r = client.post("/console/sign-in", data={"key": "y" * 40, "csrf": csrf_of(page.text)})
        assert r.status_code == 401 and "does not work" in r.text
        r = client.post(
            "/console/sign-in",
            data={"key": operator_key, "csrf": csrf_of(r.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303 and cookies.COOKIE in client.cookies

    def test_next_stays_in_the_console(self, client, operator_key) -> None:
        page = client.get("/console/sign-in")
        for target, lands in (
            ("/console/partners", "/console/partners"),
            ("//evil.example/console/", "/console/"),
            ("https://evil.example/", "/console/"),
        ):
            r = client.post(
                "/console/sign-in",
                data={"key": operator_key, "csrf": csrf_of(page.text), "next": target},
                follow_redirects=False,
            )
            assert r.headers["location"] == lands
            client.cookies.clear()
            page = client.get("/console/sign-in")

    def test_revoking_the_key_ends_the_session(self, client, factory, maker) -> None:
        key = factory.key(Role.OPERATOR)
        assert sign_in(client, key).status_code == 303
        assert client.get("/console/partners").status_code == 200
        with session_scope(maker) as s:
            record = s.scalars(select(ApiKey).order_by(ApiKey.id.desc())).first()
            record.revoked_at = utcnow()
        r = client.get("/console/partners", follow_redirects=False)
        assert r.status_code == 303 and "session%20ended" in r.headers["location"]

    def test_forged_or_expired_cookies_are_no_session(self, client, factory, maker) -> None:
        key = factory.key(Role.OPERATOR)
        with maker() as s:
            key_uuid = s.scalars(select(ApiKey.uuid).order_by(ApiKey.id.desc())).first()
        client.cookies.set(
            cookies.COOKIE, cookies.issue(key_uuid=key_uuid, secret="another secret" * 4)
        )
        assert client.get("/console/", follow_redirects=False).status_code == 303
        old = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
        client.cookies.set(
            cookies.COOKIE, cookies.issue(key_uuid=key_uuid, secret=TEST_SECRET, now=old)
        )
        assert client.get("/console/", follow_redirects=False).status_code == 303
        good = cookies.issue(key_uuid=key_uuid, secret=TEST_SECRET)
        client.cookies.set(cookies.COOKIE, good)
        assert client.get("/console/", follow_redirects=False).status_code == 200
        body, mac = good.split(".")
        client.cookies.set(cookies.COOKIE, body[:-2] + "xx." + mac)
        assert client.get("/console/", follow_redirects=False).status_code == 303
        assert key  # the key itself never travelled after sign-in

    def test_sign_out(self, console: TestClient) -> None:
        token = form_token(console)
        r = console.post("/console/sign-out", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 303 and cookies.COOKIE not in console.cookies
        assert console.get("/console/", follow_redirects=False).status_code == 303


class TestPages:
    def test_every_page_renders_for_operator_and_auditor(self, client, factory) -> None:
        factory.partner("Z-CERT", sectors=["health"], functions=["information-sharing"])
        for role in (Role.OPERATOR, Role.AUDITOR):
            client.cookies.clear()
            assert sign_in(client, factory.key(role)).status_code == 303
            for page in PAGES:
                r = client.get(page)
                assert r.status_code == 200, (role, page, r.text[:500])
        cell = client.get("/console/coverage/cell?function=information-sharing&sector=health")
        assert "Z-CERT" in cell.text

    def test_bad_query_values_are_a_4xx_page_naming_them(self, console) -> None:
        r = console.get("/console/coverage?as_of=2026-02-30")
        assert r.status_code == 422 and "as_of" in r.text
        r = console.get("/console/partners?sector=nope")
        assert r.status_code == 422 and "sector" in r.text
        r = console.get("/console/partners/no-such-partner")
        assert r.status_code == 404

    def test_coverage_page_and_csv(self, console, factory) -> None:
        factory.partner("Z-CERT", sectors=["health"], functions=["incident-handling"])
        page = console.get("/console/coverage")
        assert "Function × sector" in page.text and "incident-handling × energy" in page.text
        csv = console.get("/console/coverage.csv")
        assert csv.headers["content-type"].startswith("text/csv")
        assert "cell,incident-handling,health,nl,1," in csv.text

    def test_coverage_of_one_tier_down_to_its_cell(self, console, factory) -> None:
        factory.partner("Core", tier="core", sectors=["health"], functions=["incident-handling"])
        factory.partner(
            "Eco", tier="ecosystem", sectors=["health"], functions=["incident-handling"]
        )
        page = console.get("/console/coverage", params={"tier": "ecosystem"})
        assert page.status_code == 200 and "in the ecosystem tier" in page.text
        link = "/console/coverage/cell?function=incident-handling&amp;sector=health"
        assert f"{link}&amp;as_of=" in page.text and "&tier=ecosystem" in page.text
        cell = console.get(
            "/console/coverage/cell",
            params={"function": "incident-handling", "sector": "health", "tier": "ecosystem"},
        )
        assert "Eco" in cell.text and "Core" not in cell.text
        csv_text = console.get("/console/coverage.csv", params={"tier": "core"}).text
        assert "cell,incident-handling,health,nl,1," in csv_text
        assert console.get("/console/coverage", params={"tier": "gold"}).status_code == 422

    def test_markup_in_data_is_escaped(self, console, factory) -> None:
        factory.partner("<script>alert(1)</script>", sectors=["health"])
        page = console.get("/console/partners")
        assert "<script>alert(1)</script>" not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


class TestActions:
    def test_lifecycle_change_as_the_api_would(self, console, factory, maker) -> None:
        partner = factory.partner("Z-CERT")
        url = f"/console/partners/{partner.uuid}"
        token = form_token(console, url)
        r = console.post(
            f"{url}/status",
            data={"csrf": token, "status": "suspended", "reason": "contract lapsed"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"].startswith(url)
        assert status_of(maker, partner) == "suspended"
        with maker() as s:
            change = s.scalars(select(PartnerChange).order_by(PartnerChange.id.desc())).first()
            entry = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert change.changes["status_reason"]["new"] == "contract lapsed"
        assert change.actor.startswith("key:") and "operator" in change.actor
        assert entry.action == "partner.status" and entry.actor == change.actor
        # the lifecycle's own rules: a reason is required, illegal moves are a 409
        r = console.post(f"{url}/status", data={"csrf": token, "status": "active"})
        assert r.status_code == 200 and status_of(maker, partner) == "active"
        r = console.post(f"{url}/status", data={"csrf": token, "status": "withdrawn"})
        assert r.status_code == 422 and "reason" in r.text
        r = console.post(f"{url}/status", data={"csrf": token, "status": "prospect"})
        assert r.status_code == 409
        assert status_of(maker, partner) == "active"

    def test_forged_forms_change_nothing(self, console, client, factory, maker) -> None:
        partner = factory.partner("Z-CERT")
        url = f"/console/partners/{partner.uuid}/status"
        data = {"status": "suspended", "reason": "forged"}
        assert console.post(url, data=data).status_code == 403
        assert console.post(url, data={**data, "csrf": "0" * 64}).status_code == 403
        token = form_token(console)
        r = console.post(
            url, data={**data, "csrf": token}, headers={"Origin": "https://evil.example"}
        )
        assert r.status_code == 403
        # a token of another session is no token of this one
        other = TestClient(console.app)
        assert sign_in(other, factory.key(Role.OPERATOR)).status_code == 303
        r = other.post(url, data={**data, "csrf": token})
        assert r.status_code == 403
        assert status_of(maker, partner) == "active"

    def test_the_auditor_changes_nothing(self, client, factory, maker) -> None:
        partner = factory.partner("Z-CERT")
        assert sign_in(client, factory.key(Role.AUDITOR)).status_code == 303
        page = client.get(f"/console/partners/{partner.uuid}")
        assert "Change status" not in page.text and "read-only" in page.text
        r = client.post(
            f"/console/partners/{partner.uuid}/status",
            data={"csrf": csrf_of(page.text), "status": "suspended", "reason": "x"},
        )
        assert r.status_code == 403 and "auditor" in r.text
        assert status_of(maker, partner) == "active"

    def test_quarantine_release_and_reject(self, console, factory, maker) -> None:
        source = factory.partner("Source CSIRT", type="sectoral-csirt")
        first, second = event(tlp="yellow"), event(tlp="yellow")
        hold_in_quarantine(maker, source, first)
        hold_in_quarantine(maker, source, second)
        page = console.get("/console/quarantine")
        assert "tlp:yellow" in page.text
        with maker() as s:
            held = {q.item_uuid: q.uuid for q in s.scalars(select(QuarantineItem))}
        token = csrf_of(page.text)
        r = console.post(
            f"/console/quarantine/{held[first['Event']['uuid']]}/release",
            data={"csrf": token, "label": "amber", "reason": "source says amber"},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        r = console.post(
            f"/console/quarantine/{held[second['Event']['uuid']]}/reject",
            data={"csrf": token, "reason": "not ours to share"},
            follow_redirects=False,
        )
        assert r.status_code == 303
        with maker() as s:
            stored = s.scalars(select(Event.uuid)).all()
            decided = {
                q.item_uuid: (q.status, q.decision_label) for q in s.scalars(select(QuarantineItem))
            }
            actions = s.scalars(
                select(AuditEntry.action).where(AuditEntry.action.startswith("quarantine."))
            ).all()
        assert stored == [first["Event"]["uuid"]]
        assert decided == {
            first["Event"]["uuid"]: ("released", "amber"),
            second["Event"]["uuid"]: ("rejected", None),
        }
        assert sorted(actions) == ["quarantine.rejected", "quarantine.released"]
        again = console.post(
            f"/console/quarantine/{held[second['Event']['uuid']]}/release",
            data={"csrf": token, "label": "amber", "reason": "changed my mind"},
        )
        assert again.status_code == 409

    def test_requeue_a_dead_run(self, console, factory, maker) -> None:
        owner = factory.partner("Sync partner")
        with session_scope(maker) as s:
            connection = Connection(
                name="Partner MISP",
                kind="misp-pull",
                url="https://misp.example.nl",
                partner_id=owner.id,
                secret=b"-",
            )
            s.add(connection)
            s.flush()
            s.add(
                ConnectionJob(
                    connection_id=connection.id,
                    trigger="schedule",
                    state="dead",
                    attempts=5,
                    last_error="401 from remote",
                )
            )
            uuid = connection.uuid
        page = console.get("/console/connections")
        assert "Requeue dead letters" in page.text and "401 from remote" in page.text
        r = console.post(
            f"/console/connections/{uuid}/requeue",
            data={"csrf": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        with maker() as s:
            job = s.scalar(select(ConnectionJob))
            entry = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert job.state == "queued" and job.attempts == 0
        assert entry.action == "connection.requeue"
        r = console.post(f"/console/connections/{uuid}/requeue", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 409  # nothing dead any more


def test_behind_a_proxy_the_public_origin_is_ours(settings, engine, factory, maker) -> None:
    partner = factory.partner("Z-CERT")
    app = create_app(
        settings.model_copy(update={"public_url": "https://hub.example.nl"}), engine=engine
    )
    with TestClient(app, base_url="https://internal:8000") as client:
        assert sign_in(client, factory.key(Role.OPERATOR)).status_code == 303
        token = form_token(client)
        url = f"/console/partners/{partner.uuid}/status"
        data = {"csrf": token, "status": "suspended", "reason": "r"}
        r = client.post(url, data=data, headers={"Origin": "https://evil.example"})
        assert r.status_code == 403
        r = client.post(url, data=data, headers={"Origin": "null"})
        assert r.status_code == 403
        r = client.post(
            url, data=data, headers={"Origin": "https://hub.example.nl"}, follow_redirects=False
        )
        assert r.status_code == 303
    assert status_of(maker, partner) == "suspended"


def test_revoke_a_key_from_the_partner_page(console, factory, maker) -> None:
    partner = factory.partner("Z-CERT")
    key = factory.key(Role.PARTNER, partner)
    assert console.get("/api/v1/me", headers={"Authorization": key}).status_code == 200
    page = console.get(f"/console/partners/{partner.uuid}")
    with maker() as s:
        record = s.scalar(select(ApiKey).where(ApiKey.partner_id == partner.id))
    assert f"Revoke key ending {record.key_hint}" in page.text
    r = console.post(
        f"/console/partners/{partner.uuid}/keys/{record.uuid}/revoke",
        data={"csrf": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert console.get("/api/v1/me", headers={"Authorization": key}).status_code == 401
    with maker() as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
    assert entry.action == "key.revoke" and entry.object_ref == f"key:{record.uuid}"


def test_an_items_journey_with_its_lineage_drawn(console, factory, desk, auth) -> None:  # noqa: F811
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    ev = event(tlp="green", attributes=[attr("10.1.1.1")])
    desk.ingest(source, ev)
    desk.drain()
    isp_key = {"Authorization": factory.key(Role.PARTNER, isp)}
    [passon] = console.get("/api/v1/notifications?via=me", headers=isp_key).json()["items"]
    r = console.post(
        f"/api/v1/notifications/{passon['ticket']}/feedback", json={"kind": "ack"}, headers=isp_key
    )
    assert r.status_code == 201
    page = console.get(f"/console/items/{ev['Event']['uuid']}")
    assert page.status_code == 200
    svg = page.text[page.text.index('<svg id="lineage"') : page.text.index("</svg>")]
    assert ev["Event"]["uuid"] in svg and ">event<" in svg
    assert passon["ticket"] in svg and ">notification<" in svg
    assert svg.count("<line") >= 1 and "marker-end" in svg
    assert passon["ticket"] in page.text  # in the notifications table too
    assert "ack" in page.text  # and its feedback


def test_only_the_consoles_own_messages_are_shown(console) -> None:
    forged = "Your key expired: mail it to help@evil.example"
    page = console.get("/console/partners", params={"msg": forged})
    assert forged not in page.text
    page = console.get("/console/partners", params={"msg": forged, "sig": "0" * 32})
    assert forged not in page.text


def test_a_huge_form_is_refused(console) -> None:
    r = console.post("/console/sign-out", data={"csrf": "x" * (70 * 1024)})
    assert r.status_code == 422 and "too large" in r.text


def test_the_audit_page_shows_the_tree_and_its_latest_signed_checkpoint(
    console, factory, maker
) -> None:
    from datetime import timedelta

    from hub.audit import tree
    from hub.audit.note import Signer

    factory.partner("Z-CERT")
    page = console.get("/console/audit")
    assert page.status_code == 200 and "No signed checkpoint yet" in page.text
    signer = Signer.generate("cwn-hub.test/audit")
    with maker() as s:
        while tree.extend(s):
            pass
        made = tree.issue_checkpoint(s, signer, interval=timedelta(0))
        s.commit()
        assert made is not None
        size, root = made.tree_size, base64.b64encode(made.root_hash).decode()
    page = console.get("/console/audit")
    assert f'<strong id="checkpoint-size">{size}</strong>' in page.text
    assert f'<code id="checkpoint-root">{root}</code>' in page.text
    checked = console.get("/console/audit", params={"verify": "1"})
    assert "Tree verified just now" in checked.text and "1 checkpoint(s) match" in checked.text

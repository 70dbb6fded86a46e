"""The REST event view decodes its snapshot and renders its answer a piece at a time (L1):
the pieces must give exactly what decoding and serialising the whole did."""

from __future__ import annotations

import gc
import uuid
import zlib
from typing import Any

import anyio
import msgspec
import orjson
import pytest
from starlette.responses import Response, StreamingResponse

from hub import responses
from hub.intel import pieces, snapshots
from hub.intel.snapshots import gc_paused, pack
from hub.vocabulary import Role
from tests.builders import attr, event


def _whole(blob: bytes) -> Any:
    return msgspec.json.decode(zlib.decompress(blob))["event"]


def _awkward_event() -> dict[str, Any]:
    """Every kind of JSON value where the split decoder treats them differently: scalars
    and nested arrays at the top, long strings, big numbers, escapes, large objects."""
    attributes = [
        {
            "uuid": str(uuid.UUID(int=i)),
            "value": f"10.0.{i // 250}.{i % 250}",
            "comment": 'é😀"\\\n},{"x' if i % 7 == 0 else "",
            "to_ids": i % 2 == 0,
            "Tag": [{"name": "tlp:green", "local": False}],
            "n": 2**64 - 1 if i == 3 else -(2**63) if i == 4 else 1.5e300 if i == 5 else i,
        }
        for i in range(300)
    ]
    return {
        "Attribute": attributes,
        "Object": [
            {"uuid": "o1", "name": "small", "Attribute": attributes[:3]},
            {"uuid": "o2", "name": "large", "Attribute": attributes, "ObjectReference": []},
            {"uuid": "o3", "Attribute": [], "deleted": True},
        ],
        "Tag": [{"name": "tlp:amber"}, [1, [2, [3]]], "x" * 5000],
        "empty": [],
        "nothing": None,
        "flag": False,
        "n": 0.1,
        "big": 2**63,
        "Orgc": {"uuid": "org", "name": "Ørg", "nested": {"a": [1, {"b": None}]}},
        "info": "y" * 70_000,
    }


@pytest.mark.parametrize("piece_bytes", [64, 1024, 256 * 1024])
def test_decoding_in_pieces_gives_what_decoding_whole_gives(monkeypatch, piece_bytes) -> None:
    monkeypatch.setattr(pieces, "PIECE_BYTES", piece_bytes)
    monkeypatch.setattr(pieces, "INFLATE_SLICE", 97)
    blob = pack({"event": _awkward_event(), "labels": {"x": [1, 2, 3]}})
    got = pieces.event_of(blob)
    want = _whole(blob)
    assert got == want
    assert list(got) == list(want)  # same key order
    assert orjson.dumps(got) == orjson.dumps(want)  # same types (1 vs 1.0, True vs 1)
    assert list(got["Object"][1]) == list(want["Object"][1])


def test_a_truncated_snapshot_fails_as_before() -> None:
    blob = pack({"event": _awkward_event()})
    with pytest.raises(zlib.error):
        zlib.decompress(blob[:-10])
    with pytest.raises(zlib.error):
        pieces.event_of(blob[:-10])


def _body(response: StreamingResponse) -> bytes:
    async def collect() -> bytes:
        return b"".join([bytes(chunk) async for chunk in response.body_iterator])

    return anyio.run(collect)


def _reference(event: dict[str, Any], after: dict[str, Any]) -> bytes:
    """The answer as the hub has always written it: other keys, then the two lists."""
    rest = {k: v for k, v in event.items() if k not in ("Attribute", "Object")}
    lists = {"Attribute": event.get("Attribute") or [], "Object": event.get("Object") or []}
    return orjson.dumps({"Event": {**rest, **lists}, **after})


@pytest.mark.parametrize("chunk", [1, 2, 7, 1000])
@pytest.mark.parametrize("release", [False, True])
def test_the_streamed_event_is_the_whole_document(monkeypatch, chunk, release) -> None:
    monkeypatch.setattr(responses, "CHUNK", chunk)
    event = msgspec.json.decode(orjson.dumps(_awkward_event()))  # nothing shared, as decoded
    after = {"tlp": {"label": "amber", "handling": "h", "strip_attribution": False}}
    want = _reference(event, after)
    got = _body(responses.stream_event(event, after=after, headers={}, release=release))
    assert got == want
    if release:  # every element was let go once sent
        assert set(event["Attribute"]) == {None} and set(event["Object"]) == {None}
    for bare in ({}, {"info": "x"}, {"Attribute": None, "Object": [{}]}, {"Object": [{"a": 1}]}):
        assert _body(responses.stream_event(dict(bare), after={}, headers={})) == _reference(
            bare, {}
        )


def test_large_objects_are_rendered_in_chunks(monkeypatch) -> None:
    monkeypatch.setattr(responses, "CHUNK", 10)
    sizes: list[int] = []
    real = orjson.dumps

    def counted(value: Any, *args: Any) -> bytes:
        if isinstance(value, list):
            sizes.append(len(value))
        return real(value, *args)

    monkeypatch.setattr(responses.orjson, "dumps", counted)
    event = _awkward_event()
    want = _reference(event, {})
    assert _body(responses.stream_event(event, after={}, headers={})) == want
    assert max(sizes) <= 10  # the 300-attribute object went 10 attributes at a time


def test_gc_paused_moves_what_it_made_out_of_the_young_generation() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        made = [{"n": [i]} for i in range(20_000)]
        with gc_paused():  # nested: the outer one resumes
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    assert gc.get_count()[0] < 700  # no young collection left to walk the 20,000 dicts
    assert gc.is_tracked(made[0])
    del made


def test_current_state_decodes_in_pieces(monkeypatch) -> None:
    """The view's decode never holds the interpreter for one whole-snapshot call: at the
    smallest piece size each msgspec call sees at most a few elements."""
    seen: list[int] = []

    class Counting:
        def __init__(self, real: Any) -> None:
            self.real = real

        def decode(self, buf: Any) -> Any:
            seen.append(len(buf))
            return self.real.decode(buf)

    monkeypatch.setattr(pieces, "ELEMENTS", Counting(pieces.ELEMENTS))
    monkeypatch.setattr(pieces, "PIECE_BYTES", 4096)
    blob = pack({"event": _awkward_event()})
    assert pieces.event_of(blob) == _whole(blob)
    assert len(seen) > 10 and max(seen) < 80_000  # the 70 kB title is decoded alone


# --- through the route: a partial recipient, streamed vs whole -----------------------------------


def _whole_current_state(session: Any, event: Any) -> dict[str, Any]:
    from sqlalchemy import select

    from hub.models import EventVersion

    blob = session.scalar(
        select(EventVersion.snapshot).where(
            EventVersion.event_id == event.id, EventVersion.version == event.version
        )
    )
    return snapshots.unpack(blob)["event"]  # type: ignore[no-any-return]


def test_the_event_view_answers_the_same_bytes_decoded_and_rendered_whole(
    client, factory, monkeypatch
) -> None:
    """A connection partner receives part of the event (no AMBER, no object with an AMBER
    attribute), its own sighting with its name and another's anonymised: the answer decoded
    and rendered in pieces is byte for byte the answer decoded and rendered whole."""
    from hub.intel import endpoints

    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    reader = factory.partner("Connection partner", tier="connection")
    src = {"Authorization": factory.key(Role.PARTNER, source)}
    conn = {"Authorization": factory.key(Role.PARTNER, reader)}
    labels = ("clear", "green", "amber", None)
    attributes = [attr(f"192.0.2.{i}", labels[i % 4], comment=f"c{i} é") for i in range(60)]
    body = event(tlp="green", attributes=attributes)
    body["Event"]["Object"] = [
        {
            "uuid": str(uuid.uuid4()),
            "name": "domain-ip",
            "distribution": "5",
            "Attribute": [
                dict(attr(f"198.51.100.{j}", "green" if k else "clear"), object_relation="ip")
                for j in range(k * 20, k * 20 + 20)
            ],
        }
        for k in range(3)
    ] + [
        {
            "uuid": str(uuid.uuid4()),
            "name": "withheld",
            "Attribute": [dict(attr("203.0.113.9", "amber"), object_relation="ip")],
        }
    ]
    assert client.post("/api/v1/events", json=body, headers=src).status_code == 201
    for who, value in ((conn, "192.0.2.1"), (src, "192.0.2.5")):
        r = client.post("/misp/sightings/add", json={"value": value}, headers=who)
        assert r.status_code == 200, r.text
    view = f"/api/v1/events/{body['Event']['uuid']}"

    monkeypatch.setattr(responses, "CHUNK", 3)
    monkeypatch.setattr(pieces, "PIECE_BYTES", 512)
    streamed = client.get(view, headers=conn)
    assert streamed.status_code == 200

    def whole(event: dict[str, Any], *, after: dict[str, Any], headers: dict[str, str], **_: Any):
        return Response(_reference(event, after), headers=headers)

    monkeypatch.setattr(endpoints, "stream_event", whole)
    monkeypatch.setattr("hub.sharing.events.current_state", _whole_current_state)
    rendered_whole = client.get(view, headers=conn)
    assert rendered_whole.status_code == 200
    assert streamed.content == rendered_whole.content
    got = streamed.json()["Event"]
    values = {a["value"] for a in got["Attribute"]}
    assert "192.0.2.2" not in values and "192.0.2.1" in values  # AMBER withheld
    assert len(got["Object"]) == 3  # the object with an AMBER attribute went whole
    sightings = {a["value"]: a["Sighting"] for a in got["Attribute"] if a.get("Sighting")}
    assert sightings["192.0.2.1"][0]["Organisation"]["name"] == "Connection partner"
    assert "Organisation" not in sightings["192.0.2.5"][0]  # another's, anonymised


def _stored(event: dict[str, Any], labels: Any) -> bytes:
    """A snapshot as ``drafts.digest_and_snapshot`` writes it: the event with its keys
    sorted (so "Attribute" comes first), then the labels."""
    text = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    return zlib.compress(b'{"event":' + text + b',"labels":' + orjson.dumps(labels) + b"}", 1)


def _tricky_attributes(n: int) -> list[dict[str, Any]]:
    """Attributes whose text misleads a guess at element boundaries: several tags (a nested
    ``},{"``), values holding braces and quotes, some without tags (another first key)."""
    out = []
    for i in range(n):
        a: dict[str, Any] = {
            "uuid": str(uuid.UUID(int=i + 1)),
            "value": ['},{"Tag":[', '"},{"', "}]},{", "plain"][i % 4] * (1 + i % 3),
            "type": "text",
        }
        if i % 5:
            a["Tag"] = [{"name": f"t{j}", "local": j == 1} for j in range(1 + i % 3)]
        if i % 11 == 0:
            a["Sighting"] = [{"uuid": "s", "type": "0"}, {"uuid": "t", "type": "1"}]
        out.append(a)
    return out


@pytest.mark.parametrize("piece_bytes", [64, 700, 4096])
@pytest.mark.parametrize("misses", [0, 64])
def test_the_walk_over_a_stored_snapshot_gives_what_decoding_whole_gives(
    monkeypatch, piece_bytes, misses
) -> None:
    monkeypatch.setattr(pieces, "PIECE_BYTES", piece_bytes)
    monkeypatch.setattr(pieces, "WALK_LOOK", piece_bytes)
    monkeypatch.setattr(pieces, "WALK_MISSES", misses)
    event = _awkward_event()
    event["Attribute"] = _tricky_attributes(400)
    labels = {"labels": {"x": [1]}, "more": ',"labels":{"y":2}'}  # a ',"labels":' inside
    blob = _stored(event, labels)
    text = zlib.decompress(blob)
    assert text.startswith(pieces._WALK_FROM)  # noqa: SLF001
    walked, at = pieces._walk(text)  # noqa: SLF001
    assert text[at : at + 1] == b"{" or at == 0  # it stopped at an element's start
    if misses:
        assert len(walked) > 100  # the misleading text was walked past
    got = pieces.event_of(blob)
    want = _whole(blob)
    assert got == want
    assert orjson.dumps(got) == orjson.dumps(want)


def test_the_walk_stops_at_an_event_with_nothing_to_walk() -> None:
    for stored in ({"Attribute": [], "info": "x"}, {"Attribute": [{"a": 1}], "Object": []}, {}):
        blob = _stored(stored, {})
        assert pieces.event_of(blob) == stored

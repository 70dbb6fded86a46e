"""How an exercise's events are told apart from real traffic in the store: a closed
exercise takes nothing more, and its events carry the exercise's tag and title mark."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import Conflict
from hub.models import Exercise

EXERCISE_TAG_PREFIX = "cwn:exercise="
EXERCISE_TITLE_PREFIX = "EXERCISE: "


def check_open(session: Session, exercise: str) -> None:
    """A closed exercise is frozen: nothing more is stored in it (409)."""
    status = session.scalar(select(Exercise.status).where(Exercise.uuid == exercise))
    if status is None or status == "closed":
        raise Conflict("the exercise is closed: it takes no more submissions")


def claims_exercise(event: dict[str, Any]) -> bool:
    """Whether a submitted event carries an exercise tag (the hub's namespace)."""
    return any(
        str(t.get("name", "")).lower().startswith(EXERCISE_TAG_PREFIX)
        for t in event.get("Tag") or []
        if isinstance(t, dict)
    )


def exercise_marked(event: dict[str, Any], exercise: str | None) -> None:
    """Mark an exercise's event in place as exercise traffic in the way MISP allows (the tag
    ``cwn:exercise="<id>"`` and a title starting ``EXERCISE: ``): every channel serves the
    stored event, so every copy carries the marks. Real traffic never carries the tag (the
    hub's namespace): a submitted one is dropped."""
    tags = [
        t
        for t in event.get("Tag") or []
        if not str(t.get("name", "")).lower().startswith(EXERCISE_TAG_PREFIX)
    ]
    if exercise is not None:
        tags.append({"name": f'{EXERCISE_TAG_PREFIX}"{exercise}"', "local": False})
        info = str(event.get("info") or "")
        if not info.startswith(EXERCISE_TITLE_PREFIX):
            event["info"] = EXERCISE_TITLE_PREFIX + info
    event["Tag"] = tags

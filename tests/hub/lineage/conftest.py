"""The DSN desk fixture, shared with the notification tests."""

from tests.hub.notifications.conftest import desk  # noqa: F401

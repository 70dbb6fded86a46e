"""Fixtures shared with other test packages: the DSN desk, a second hub as a remote MISP to
push to, and the app served on a loopback port for taxii2-client."""

from tests.hub.connections.conftest import remote  # noqa: F401
from tests.hub.notifications.conftest import desk  # noqa: F401
from tests.hub.taxii.conftest import server_url  # noqa: F401

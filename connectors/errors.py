"""Every failure a connector reports, sorted by what the caller should do about it.

::

    ConnectorError                    something went wrong talking to a remote system
    ├── RetriableError                try again later (``retry_after`` when the remote said)
    │   └── SourceUnavailable         timeout, refused connection, 5xx, 429
    └── PermanentError                retrying will not help; a person must act
        ├── AuthenticationFailed      401/403 on a call that needs no more than a working key
        ├── RemoteRejected            the remote refused one item (4xx on push); skip it
        └── MappingError              the remote's answer is not what the protocol says

Foreign exceptions (requests, PyMISP, taxii2-client) are translated where they are raised,
in the smallest ``try``, and chained (``raise … from err``).
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of the tree; ``str(err)`` is a sentence an operator can act on."""

    retriable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RetriableError(ConnectorError):
    """A failure that may pass: try again after ``retry_after`` seconds (or a backoff)."""

    retriable = True

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class SourceUnavailable(RetriableError):
    """The remote did not answer in time, refused the connection, or answered 5xx/429."""


class PermanentError(ConnectorError):
    """Retrying the same call will fail the same way."""


class AuthenticationFailed(PermanentError):
    """The remote refused the key (401, or 403 where a working key would be let in)."""


class RemoteRejected(PermanentError):
    """The remote refused one item (for example a push it will not store)."""


class MappingError(PermanentError):
    """The remote answered something the protocol does not allow (wrong shape, not JSON)."""

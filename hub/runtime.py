"""The runtime: what every entry point of the hub needs, built once.

The API (``create_app``), the worker and every CLI command build one :class:`Runtime` from the
settings and hand it down, instead of each reading the environment, choosing a TLP policy and
making its own engine: the policy that decides releases is the same object for a request, a
job and a command, and the secret that hashes keys and seals credentials is read in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import tlp
from hub.db import make_engine, make_sessionmaker
from hub.settings import Settings, get_settings


@dataclass(frozen=True)
class Runtime:
    """Settings, the TLP policy and (once opened) the database sessions.

    A runtime built without an engine (``Runtime(settings=...)``) carries settings and policy
    only: what a job needs when its caller hands it the sessions, as tests do.
    """

    settings: Settings
    policy: tlp.Policy = tlp.DEFAULT_POLICY
    engine: Engine | None = None
    owns_engine: bool = field(default=False, repr=False)
    maker: sessionmaker[Session] | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        engine: Engine | None = None,
        requests: bool = False,
        policy: tlp.Policy = tlp.DEFAULT_POLICY,
    ) -> Runtime:
        """A runtime with its database: ``engine`` when given (the caller keeps it), else one
        made for ``settings`` (``requests=True`` for the API's bounded waits) and disposed by
        :meth:`close`."""
        settings = settings or get_settings()
        owns = engine is None
        engine = engine or make_engine(settings, requests=requests)
        return cls(
            settings=settings,
            policy=policy,
            engine=engine,
            owns_engine=owns,
            maker=make_sessionmaker(engine),
        )

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self.maker is None:
            raise RuntimeError("this runtime was built without a database; use Runtime.open")
        return self.maker

    @property
    def secret(self) -> str:
        """The hub secret (key hashing, sealed credentials, signed cursors and cookies)."""
        return self.settings.secret

    def close(self) -> None:
        if self.owns_engine and self.engine is not None:
            self.engine.dispose()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

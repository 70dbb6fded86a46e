"""Errors raised by the TLP policy engine.

Our exception hierarchy:

* TLPError                 base class; catch it to handle any marking problem
  + UnknownMarking         looks like TLP (or is a marking reference) but is not one we know
  + MalformedMarking       broken shape: no name, wrong type, contradicts itself
  + MalformedInput         an event or bundle that is not the shape the function needs

Ingest turns `UnknownMarking` and `MalformedMarking` into quarantine: an item with such a
marking is held, never delivered as if it were unmarked.
"""

from __future__ import annotations


class TLPError(Exception):
    """Base class of every error raised by `tlp`.

    Args:
        message: what went wrong, for people.
        value: the offending value (tag name, marking id, marking object), for the audit record.
    """

    def __init__(self, message: str, *, value: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.value = value


class UnknownMarking(TLPError):
    """A TLP-looking label or a marking reference that does not resolve to a known marking."""


class MalformedMarking(TLPError):
    """A marking that cannot be read: wrong type, no value, or contradicting its own id."""


class MalformedInput(TLPError):
    """An event or bundle whose outer shape is not what the function accepts."""

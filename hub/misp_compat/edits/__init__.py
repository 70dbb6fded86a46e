"""Writes to an existing event through ``/misp``, as MISP applies them: add, edit and delete
attributes, objects, object references and event reports; attach and remove tags; publish,
unpublish and delete the event; a partial ``events/edit``.

Each write is built as the edit MISP would apply and ingested as a new version of the
caller's event (``hub.intel.service.ingest_events``): the caller's organisation is its
creator, the version and its audit entry record the change, the merge applies it (an element
sent without a timestamp is stamped now and always applied). Only an event's creator changes
it; an event or element the caller may not see answers as a missing one. Like MISP, a change
to an event's content leaves it unpublished until it is published again.

TLP tags may only make an element stricter: attaching a label below the element's effective
one, removing a TLP label or sending an unreadable one is refused before anything is stored.
Local tags never leave the hub (DESIGN.md §3), so the hub keeps none: attaching one changes
nothing.

One module per kind of element (``attributes``, ``objects``, ``reports``, ``tags``,
``events``); ``base`` holds what they share. The endpoints use the names below.
"""

from hub.misp_compat.edits.attributes import (
    DUPLICATE,
    add_attributes,
    delete_attribute,
    edit_attribute,
)
from hub.misp_compat.edits.base import NOT_OWNER, Writer, Written, store
from hub.misp_compat.edits.events import delete_event, publish
from hub.misp_compat.edits.objects import (
    MAX_SCAN,
    add_object,
    add_reference,
    delete_object,
    delete_reference,
    edit_object,
)
from hub.misp_compat.edits.reports import add_report, delete_report, edit_report
from hub.misp_compat.edits.tags import Tagged, attach_tag, remove_tag

__all__ = [
    "DUPLICATE",
    "MAX_SCAN",
    "NOT_OWNER",
    "Tagged",
    "Writer",
    "Written",
    "add_attributes",
    "add_object",
    "add_reference",
    "add_report",
    "attach_tag",
    "delete_attribute",
    "delete_event",
    "delete_object",
    "delete_reference",
    "delete_report",
    "edit_attribute",
    "edit_object",
    "edit_report",
    "publish",
    "remove_tag",
    "store",
]

"""MISP over PyMISP: pull and push as a MISP server does (reference: misp-sync.md §2)."""

from connectors.misp.client import MispConfig, MispConnector
from connectors.misp.convert import downgrade_for_pull, has_content, prepare_for_push

__all__ = ["MispConfig", "MispConnector", "downgrade_for_pull", "has_content", "prepare_for_push"]

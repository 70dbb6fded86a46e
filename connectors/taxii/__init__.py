"""TAXII 2.1 over taxii2-client: read a remote collection page by page."""

from connectors.taxii.client import TaxiiConfig, TaxiiConnector

__all__ = ["TaxiiConfig", "TaxiiConnector"]

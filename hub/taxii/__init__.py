"""TAXII 2.1 server: audience-scoped collections of the STIX rendered from stored events."""

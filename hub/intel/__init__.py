"""The intelligence store: ingest of MISP events and STIX bundles, versions, quarantine."""

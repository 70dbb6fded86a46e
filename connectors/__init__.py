"""Talking to outside systems (MISP, TAXII, STIX files); no database imports.

Empty until the connectors issue: the package exists so the import layering
(hub → connectors → tlp) is checked from the start.
"""

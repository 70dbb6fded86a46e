"""Lineage: item versions → decisions → notifications → deliveries → feedback, as a PROV graph."""

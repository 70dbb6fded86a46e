"""CWN hub: the threat-information sharing service of the Dutch cyber-resilience network."""

__version__ = "0.1.0"

"""The release path: the only way content leaves the hub (tlp.decide, then an audit entry)."""

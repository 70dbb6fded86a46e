"""Exercises (OTO, issue #20): practise information sharing on the real hub, isolated by
one rule in the release path (``tlp.in_scope``) and measured from the audit log."""

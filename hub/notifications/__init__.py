"""Target and victim notification (DSN): matching, two-hop routing, tickets, feedback,
retraction."""

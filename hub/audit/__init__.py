"""The hash-chained, append-only audit log (``append`` in the caller's transaction; ``verify``)."""

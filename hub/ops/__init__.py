"""Operations: health, Prometheus metrics, JSON logs with a request id."""

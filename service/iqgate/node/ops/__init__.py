"""Operations: stage events and Prometheus metrics, the HTTP endpoints, JSON logs without patient data."""

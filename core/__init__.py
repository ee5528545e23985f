"""The plumbing below every app: the error envelope, middleware, logging, network and text helpers,
OpenAPI helpers, the Redis roles and breaker, rates, times, parsers, admin display helpers and the
Prometheus instruments. It imports no app (``lint-imports``)."""

"""The event backbone: a transactional outbox, a relay, and idempotent consumers."""

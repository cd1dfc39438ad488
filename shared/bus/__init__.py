"""The event bus on NATS JetStream: envelopes, streams, the transactional outbox and its
relay, and durable consumers with an inbox so each event takes effect exactly once."""

"""The Qudao application: the `qudao` command line, the supervisor of the embedded
suite (`qudao up`) and the embedded NATS server. It may import services; no service
imports it, and service images do not need it."""

"""JetStream streams: one per producing service, plus the dead-letter stream."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from shared.bus.envelope import stream_name

# JetStream drops a re-publish with the same Nats-Msg-Id inside this window. The outbox
# relay's worst-case lag (its batch timeout plus retry backoff) stays far below it.
DUPLICATE_WINDOW_SECONDS = 600.0
DEAD_LETTER_STREAM = "QUDAO_DLQ"
DEAD_LETTER_PREFIX = "qudao.dlq"


def stream_config(producer: str, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=stream_name(producer),
        num_replicas=replicas,
        subjects=[f"qudao.{producer}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        max_age=90 * 24 * 3600.0,
    )


def dead_letter_config(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=DEAD_LETTER_STREAM,
        num_replicas=replicas,
        subjects=[f"{DEAD_LETTER_PREFIX}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        max_age=365 * 24 * 3600.0,
    )


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        return
    await js.update_stream(config)


async def ensure_streams(js: JetStreamContext, producers: list[str] | tuple[str, ...],
                         replicas: int) -> None:
    """Create or update a producer's own stream and the dead-letter stream, with the
    replicas its settings give (QUDAO_NATS_STREAM_REPLICAS: 3 on a JetStream cluster).
    Only the producer calls this: consumers never create or change another's stream."""
    for producer in producers:
        await ensure_stream(js, stream_config(producer, replicas))
    await ensure_stream(js, dead_letter_config(replicas))


def dead_letter_subject(durable: str) -> str:
    """``qudao.dlq.<service>.<durable>``: under the consuming service's own prefix, the
    only dead-letter subjects its NATS user may publish (durables are
    ``<service>-<handler>``)."""
    return f"{DEAD_LETTER_PREFIX}.{durable.split('-', 1)[0]}.{durable}"


def dead_letter_filter(durable: str = "") -> str:
    """The subjects holding ``durable``'s dead letters, or everyone's."""
    return dead_letter_subject(durable) if durable else f"{DEAD_LETTER_PREFIX}.>"

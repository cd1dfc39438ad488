"""Ops view of the dead-letter stream: list what landed there and replay it onto its
original subject (with a fresh Nats-Msg-Id, since the original may still be inside the
duplicate window; consumers still de-duplicate by the envelope's event id)."""

from __future__ import annotations

import uuid

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.bus.connection import connect
from shared.bus.permissions import OPS
from shared.bus.streams import DEAD_LETTER_STREAM, dead_letter_filter


async def read_dead_letters(js, consumer: str = "", limit: int = 10_000):
    subject = dead_letter_filter(consumer)
    ephemeral = await js.pull_subscribe(
        subject, stream=DEAD_LETTER_STREAM,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
                              inactive_threshold=30.0),
    )
    messages = []
    try:
        while len(messages) < limit:
            try:
                batch = await ephemeral.fetch(256, timeout=1.0)
            except TimeoutError:
                break
            except Exception as exc:  # nats.errors.TimeoutError is not a TimeoutError
                if "timeout" in type(exc).__name__.lower():
                    break
                raise
            messages.extend(batch)
    finally:
        await ephemeral.unsubscribe()
    return messages


async def list_dead_letters(url: str, consumer: str = "", password: str = "") -> None:
    nc = await connect(url, "qudao-ops", user=OPS, password=password)
    try:
        for message in await read_dead_letters(nc.jetstream(), consumer):
            headers = message.headers or {}
            print(f"{message.metadata.sequence.stream}\t{headers.get('Qudao-Consumer')}\t"
                  f"{headers.get('Qudao-Original-Subject')}\t{headers.get('Qudao-Event-Id')}\t"
                  f"{headers.get('Qudao-Error')}")
    finally:
        await nc.close()


async def replay_dead_letters(url: str, consumer: str = "", password: str = "") -> None:
    nc = await connect(url, "qudao-ops", user=OPS, password=password)
    js = nc.jetstream()
    try:
        replayed = 0
        for message in await read_dead_letters(js, consumer):
            headers = message.headers or {}
            original = headers.get("Qudao-Original-Subject")
            if not original:
                continue
            await js.publish(original, message.data,
                             headers={"Nats-Msg-Id": f"replay:{uuid.uuid4()}"})
            await js.delete_msg(DEAD_LETTER_STREAM, message.metadata.sequence.stream)
            replayed += 1
        print(f"replayed {replayed} event(s)")
    finally:
        await nc.close()

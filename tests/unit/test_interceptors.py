"""What every gRPC call a service serves goes through (shared/interceptors.py), on a real
grpc.aio server with handlers added the way ServiceHost adds them: the caller's request
id and principal bound, a missing or bad token refused, domain errors and crashes turned
into statuses, each call counted by method and code, an Idempotency-Key answered once,
and each handler wrapped once, not per call."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import REGISTRY

from shared.auth import TokenIssuer, TokenVerifier, generate_keypair
from shared.context import Principal, current_principal, current_request_id
from shared.errors import NotFound
from shared.interceptors import ContextInterceptor

SERVICE = "qudao.test.v1.Probe"
WHO = Principal(subject="user:u1", user_id="u1", roles=frozenset({"hq_admin"}))


def counted(method: str, code: str) -> float:
    return REGISTRY.get_sample_value("qudao_grpc_server_handling_seconds_count",
                                     {"method": f"/{SERVICE}/{method}", "code": code}) or 0


class OnceByKey:
    """ClientRequests' contract without a database: the first answer per key is kept."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str], bytes] = {}

    async def once(self, method, key, request, run):
        if (method, key) not in self.kept:
            self.kept[method, key] = await run()
        return self.kept[method, key]


@pytest.fixture
async def probe(tmp_path):
    private_key, public_key = generate_keypair(tmp_path / "keys")
    token = TokenIssuer(private_key.read_bytes()).issue(WHO)[0]
    runs = []

    async def who(request: bytes, context) -> bytes:
        runs.append(request)
        return f"{current_request_id()}|{current_principal().subject}".encode()

    async def missing(request: bytes, context) -> bytes:
        raise NotFound("no such thing")

    async def crash(request: bytes, context) -> bytes:
        raise RuntimeError("boom")

    async def refuse(request: bytes, context) -> bytes:
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not yours")

    async def count(request: bytes, context):
        for n in range(3):
            yield str(n).encode()

    interceptor = ContextInterceptor(
        "test", TokenVerifier(public_key.read_bytes()), public_methods={f"/{SERVICE}/Open"},
        client_requests=OnceByKey())
    server = grpc.aio.server()
    handlers = interceptor.registrar(server)
    handlers.add_registered_method_handlers(SERVICE, {
        "Who": grpc.unary_unary_rpc_method_handler(who),
        "Open": grpc.unary_unary_rpc_method_handler(who),
        "Missing": grpc.unary_unary_rpc_method_handler(missing),
        "Crash": grpc.unary_unary_rpc_method_handler(crash),
        "Refuse": grpc.unary_unary_rpc_method_handler(refuse),
        "Count": grpc.unary_stream_rpc_method_handler(count),
    })
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield channel, token, runs, handlers
    await channel.close()
    await server.stop(None)


def bearer(token: str, *more: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"), *more)


async def test_the_caller_and_request_id_are_bound_and_the_call_counted(probe):
    channel, token, _, _ = probe
    who = channel.unary_unary(f"/{SERVICE}/Who")
    before = counted("Who", "OK")
    answer = await who(b"", metadata=bearer(token, ("x-request-id", "rid-1")))
    assert answer == b"rid-1|user:u1"
    # Without a request id one is made up.
    request_id, _, subject = (await who(b"", metadata=bearer(token))).decode().partition("|")
    assert len(request_id) == 32 and subject == "user:u1"
    assert counted("Who", "OK") == before + 2


async def test_a_missing_or_bad_token_is_refused_but_public_methods_answer(probe):
    channel, _, runs, _ = probe
    for metadata in ((), bearer("not-a-token")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await channel.unary_unary(f"/{SERVICE}/Who")(b"", metadata=metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert runs == []
    assert (await channel.unary_unary(f"/{SERVICE}/Open")(b"")).endswith(b"|anonymous")
    assert runs == [b""]


async def test_errors_become_statuses_and_are_counted_by_code(probe):
    channel, token, _, _ = probe
    expected = {"Missing": grpc.StatusCode.NOT_FOUND, "Crash": grpc.StatusCode.INTERNAL,
                "Refuse": grpc.StatusCode.PERMISSION_DENIED}
    for method, code in expected.items():
        before = counted(method, code.name)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await channel.unary_unary(f"/{SERVICE}/{method}")(
                b"", metadata=bearer(token, ("x-request-id", "rid-2")))
        assert failed.value.code() == code
        assert counted(method, code.name) == before + 1
        if code == grpc.StatusCode.INTERNAL:
            assert "rid-2" in failed.value.details()


async def test_an_idempotency_key_runs_the_call_once(probe):
    channel, token, runs, _ = probe
    who = channel.unary_unary(f"/{SERVICE}/Who")
    first = await who(b"a", metadata=bearer(token, ("idempotency-key", "k1"),
                                              ("x-request-id", "first")))
    again = await who(b"a", metadata=bearer(token, ("idempotency-key", "k1"),
                                              ("x-request-id", "again")))
    assert first == again == b"first|user:u1"
    assert runs == [b"a"]


async def test_server_streaming_methods_are_authenticated(probe):
    channel, token, _, _ = probe
    count = channel.unary_stream(f"/{SERVICE}/Count")
    assert [m async for m in count(b"", metadata=bearer(token))] == [b"0", b"1", b"2"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        [m async for m in count(b"")]
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_each_handler_is_wrapped_once(probe):
    _, _, _, handlers = probe

    class Details:
        method = f"/{SERVICE}/Who"

    assert handlers.service(Details()) is handlers.service(Details())

import time

import pytest

from shared.auth import TokenIssuer, TokenVerifier, generate_keypair
from shared.config import ConfigError, load_gateway_settings, load_service_settings
from shared.context import Principal
from shared.errors import Unauthenticated


def base_env(tmp_path):
    return {"QUDAO_ORDER_DATABASE_URL": "sqlite+aiosqlite:///x.db",
            "QUDAO_NATS_URL": "nats://127.0.0.1:1",
            "QUDAO_JWT_PUBLIC_KEY_FILE": str(tmp_path / "k.pem")}


def test_service_settings_read_their_prefix(tmp_path):
    env = {**base_env(tmp_path), "QUDAO_ORDER_GRPC_PORT": "6000",
           "QUDAO_ORDER_OPTION_MAX_DELIVERIES": "7"}
    settings = load_service_settings("order", env)
    assert settings.grpc_port == 6000
    assert settings.options == {"max_deliveries": "7"}


@pytest.mark.parametrize("missing", ["QUDAO_ORDER_DATABASE_URL", "QUDAO_NATS_URL",
                                     "QUDAO_JWT_PUBLIC_KEY_FILE"])
def test_a_missing_setting_is_named(tmp_path, missing):
    env = base_env(tmp_path)
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        load_service_settings("order", env)


def test_a_malformed_port_is_named(tmp_path):
    with pytest.raises(ConfigError, match="QUDAO_ORDER_GRPC_PORT"):
        load_service_settings("order", {**base_env(tmp_path), "QUDAO_ORDER_GRPC_PORT": "x"})
    with pytest.raises(ConfigError, match="QUDAO_GATEWAY_PORT"):
        load_gateway_settings({"QUDAO_JWT_PUBLIC_KEY_FILE": "k", "QUDAO_GATEWAY_PORT": "?"})


def test_tokens_verify_and_expire_and_refuse_other_keys(tmp_path, monkeypatch):
    private, public = generate_keypair(tmp_path / "a")
    issuer = TokenIssuer(private.read_bytes(), ttl_seconds=60)
    verifier = TokenVerifier(public.read_bytes(), leeway_seconds=0)
    principal = Principal(subject="user:1", user_id="1", roles=frozenset({"dealer_sales"}),
                          dealer_id="d-1")
    token, token_id = issuer.issue(principal)
    verified = verifier.verify(token)
    assert (verified.dealer_id, verified.roles, verified.token_id) == (
        "d-1", frozenset({"dealer_sales"}), token_id)

    expired, _ = issuer.issue(principal, now=time.time() - 3600)
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(expired)
    assert caught.value.reason == "TOKEN_EXPIRED"

    # A token verified once is remembered, but never past its expiry.
    assert verifier.verify(token) == verified
    real_time = time.time
    monkeypatch.setattr("shared.auth.time.time", lambda: real_time() + 3600)
    with pytest.raises(Unauthenticated) as caught:
        verifier.verify(token)
    assert caught.value.reason == "TOKEN_EXPIRED"
    monkeypatch.undo()

    other_private, _ = generate_keypair(tmp_path / "b")
    forged, _ = TokenIssuer(other_private.read_bytes()).issue(principal)
    with pytest.raises(Unauthenticated):
        verifier.verify(forged)

import time

import pytest

from services.identity.settings import IdentitySettings
from services.order.settings import OrderSettings
from shared.auth import TokenIssuer, TokenVerifier, generate_keypair
from shared.context import Principal
from shared.errors import Unauthenticated
from shared.settings import ConfigError, GatewaySettings


def base_env(tmp_path):
    return {"QUDAO_ORDER_DATABASE_URL": "sqlite+aiosqlite:///x.db",
            "QUDAO_NATS_URL": "nats://127.0.0.1:1",
            "QUDAO_JWT_PUBLIC_KEY_FILE": str(tmp_path / "k.pem")}


def test_service_settings_are_typed_from_their_prefix(tmp_path):
    env = {**base_env(tmp_path), "QUDAO_ORDER_GRPC_PORT": "6000",
           "QUDAO_ORDER_OPTION_MAX_DELIVERIES": "7",
           "QUDAO_ORDER_OPTION_TIER_CACHE_SECONDS": "2.5",
           # Other processes' variables are theirs to check.
           "QUDAO_GATEWAY_PORT": "9000", "QUDAO_IDENTITY_OPTION_ARGON2_TIME_COST": "1"}
    settings = OrderSettings.from_env(env)
    assert (settings.grpc_port, settings.max_deliveries, settings.tier_cache_seconds) == (
        6000, 7, 2.5)
    assert OrderSettings.from_env(base_env(tmp_path)).grpc_port == 50153


@pytest.mark.parametrize("missing", ["QUDAO_ORDER_DATABASE_URL", "QUDAO_NATS_URL",
                                     "QUDAO_JWT_PUBLIC_KEY_FILE"])
def test_a_missing_setting_is_named(tmp_path, missing):
    env = base_env(tmp_path)
    del env[missing]
    with pytest.raises(ConfigError, match=f"missing required environment variable {missing}"):
        OrderSettings.from_env(env)


def test_a_malformed_setting_is_named_with_what_was_expected(tmp_path):
    with pytest.raises(ConfigError, match="QUDAO_ORDER_GRPC_PORT must be int"):
        OrderSettings.from_env({**base_env(tmp_path), "QUDAO_ORDER_GRPC_PORT": "x"})
    with pytest.raises(ConfigError, match="QUDAO_GATEWAY_PORT"):
        GatewaySettings.from_env({"QUDAO_JWT_PUBLIC_KEY_FILE": "k", "QUDAO_GATEWAY_PORT": "?"})
    with pytest.raises(ConfigError, match="QUDAO_LOG_FORMAT"):
        OrderSettings.from_env({**base_env(tmp_path), "QUDAO_LOG_FORMAT": "xml"})


@pytest.mark.parametrize(("variable", "hint"), [
    ("QUDAO_ORDER_OPTION_TIER_CACHE_SECOND", "QUDAO_ORDER_OPTION_TIER_CACHE_SECONDS"),
    ("QUDAO_ORDER_GRPC_PROT", "QUDAO_ORDER_GRPC_PORT"),
    ("QUDAO_NATS_ULR", "QUDAO_NATS_URL"),
])
def test_an_unknown_variable_stops_the_process_with_a_hint(tmp_path, variable, hint):
    with pytest.raises(ConfigError, match=f"unknown environment variable {variable} "
                                          f"\\(did you mean {hint}\\?\\)"):
        OrderSettings.from_env({**base_env(tmp_path), variable: "1"})


def test_identity_needs_its_signing_key(tmp_path):
    env = {"QUDAO_IDENTITY_DATABASE_URL": "sqlite+aiosqlite:///x.db",
           "QUDAO_NATS_URL": "nats://127.0.0.1:1", "QUDAO_JWT_PUBLIC_KEY_FILE": "k.pem",
           # QUDAO_IDENTITY_ADDR is suite-wide, not an identity variable.
           "QUDAO_IDENTITY_ADDR": "127.0.0.1:1"}
    with pytest.raises(ConfigError, match="QUDAO_JWT_PRIVATE_KEY_FILE"):
        IdentitySettings.from_env(env)
    settings = IdentitySettings.from_env({**env, "QUDAO_JWT_PRIVATE_KEY_FILE": "p.pem"})
    assert settings.identity_addr == "127.0.0.1:1"


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

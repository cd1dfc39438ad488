"""JWT key rotation: tokens name their key (kid); a verifier holding the old and the new
public key accepts tokens of both, and refuses a key it does not hold."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.auth import TokenIssuer, TokenVerifier
from shared.context import Principal
from shared.errors import Unauthenticated

ALICE = Principal(subject="user:a", user_id="a", roles=frozenset({"hq_admin"}))


def pair() -> tuple[bytes, bytes]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def test_both_keys_are_valid_during_a_rotation_and_only_the_new_after():
    old_private, old_public = pair()
    new_private, new_public = pair()
    old_token, _ = TokenIssuer(old_private).issue(ALICE)
    new_token, _ = TokenIssuer(new_private).issue(ALICE)
    assert TokenIssuer(old_private).kid != TokenIssuer(new_private).kid

    during = TokenVerifier(old_public + new_public)
    assert during.verify(old_token).user_id == "a"
    assert during.verify(new_token).user_id == "a"

    after = TokenVerifier(new_public)
    assert after.verify(new_token).user_id == "a"
    with pytest.raises(Unauthenticated, match="unknown key"):
        after.verify(old_token)

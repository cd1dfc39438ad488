"""Access tokens: identity signs them with its Ed25519 private key; the gateway and every
service verify them with the public key, so no service has to trust the network.

Keys rotate without logging anyone out: a token names its signing key (``kid``, derived
from the public key), and the public-key file may hold several PEM keys — during a
rotation the old and the new (deploy/README.md, "Rotate the JWT key")."""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.context import Principal
from shared.errors import Unauthenticated

ALGORITHM = "EdDSA"
ISSUER = "qudao-identity"
AUDIENCE = "qudao"


def generate_keypair(directory: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair (PEM) unless one is already there."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path = directory / "jwt-private.pem"
    public_path = directory / "jwt-public.pem"
    if private_path.exists() and public_path.exists():
        return private_path, public_path
    key = Ed25519PrivateKey.generate()
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private_path.chmod(0o600)
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private_path, public_path


def key_id(public_key) -> str:
    """A key's id: the first 16 hex digits of the SHA-256 of its raw public bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_public_keys(pem: bytes) -> dict[str, object]:
    """Every public key in a PEM file (one or more ``-----BEGIN PUBLIC KEY-----`` blocks),
    by key id."""
    blocks = re.findall(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", pem,
                        flags=re.DOTALL)
    if not blocks:
        raise ValueError("no PEM public key found")
    keys = [serialization.load_pem_public_key(block) for block in blocks]
    return {key_id(key): key for key in keys}


class TokenIssuer:
    def __init__(self, private_key_pem: bytes, ttl_seconds: int = 900) -> None:
        self._key = serialization.load_pem_private_key(private_key_pem, password=None)
        self.ttl_seconds = ttl_seconds
        self.kid = key_id(self._key.public_key())

    def issue(self, principal: Principal, *, now: float | None = None) -> tuple[str, str]:
        """Return (token, token id)."""
        # Milliseconds, not whole seconds: a revocation of every token issued before a
        # moment must not also catch the token refreshed in the same second after it.
        issued_at = round(now if now is not None else time.time(), 3)
        token_id = uuid.uuid4().hex
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": principal.subject,
            "jti": token_id,
            "iat": issued_at,
            "exp": issued_at + self.ttl_seconds,
            "uid": principal.user_id,
            "name": principal.username,
            "roles": sorted(principal.roles),
            "org": principal.org_unit_id,
            "dealer": principal.dealer_id,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM,
                          headers={"kid": self.kid}), token_id


class TokenVerifier:
    """Verifies access tokens. A client sends the same token with every call for the
    token's whole life, and an Ed25519 check costs more than the rest of a cheap call, so
    tokens already verified are remembered (bounded) until they expire. Revocation is not
    a property of the token and is checked by the caller on every call."""

    CACHE_SIZE = 10_000

    def __init__(self, public_key_pem: bytes, leeway_seconds: int = 5) -> None:
        self._keys = load_public_keys(public_key_pem)
        self._leeway = leeway_seconds
        self._verified: dict[str, tuple[Principal, float]] = {}

    @classmethod
    def from_file(cls, path: Path) -> TokenVerifier:
        return cls(Path(path).read_bytes())

    def verify(self, token: str) -> Principal:
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires_at = cached
            if time.time() <= expires_at + self._leeway:
                return principal
            del self._verified[token]
            raise Unauthenticated("access token has expired", reason="TOKEN_EXPIRED")
        principal, expires_at = self._decode(token)
        if len(self._verified) >= self.CACHE_SIZE:
            self._verified.pop(next(iter(self._verified)))  # the oldest entry
        self._verified[token] = (principal, expires_at)
        return principal

    def _key_for(self, token: str):
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid access token: {exc}", reason="TOKEN_INVALID") from exc
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))  # a token from before key ids
        key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated("access token signed by an unknown key",
                                  reason="TOKEN_INVALID")
        return key

    def _decode(self, token: str) -> tuple[Principal, float]:
        key = self._key_for(token)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "sub", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("access token has expired", reason="TOKEN_EXPIRED") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid access token: {exc}", reason="TOKEN_INVALID") from exc
        return Principal(
            subject=claims["sub"],
            user_id=claims.get("uid", ""),
            username=claims.get("name", ""),
            roles=frozenset(claims.get("roles", [])),
            org_unit_id=claims.get("org", ""),
            dealer_id=claims.get("dealer", ""),
            token_id=claims["jti"],
            issued_at=float(claims["iat"]),
        ), float(claims["exp"])


def bearer_token(header_value: str | None) -> str | None:
    if not header_value:
        return None
    scheme, _, token = header_value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()

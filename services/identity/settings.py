"""The identity service's settings (QUDAO_IDENTITY_*; options QUDAO_IDENTITY_OPTION_<NAME>)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from argon2 import PasswordHasher

from shared.settings import ServiceSettings

# argon2id at the library's RFC 9106 defaults unless configured otherwise.
_ARGON2 = PasswordHasher()


class IdentitySettings(ServiceSettings):
    process: ClassVar[str] = "identity"
    suite_fields: ClassVar[frozenset[str]] = ServiceSettings.suite_fields | {
        "jwt_private_key_file"}

    # Only identity signs tokens.
    jwt_private_key_file: Path
    access_token_ttl_seconds: int = 900
    argon2_time_cost: int = _ARGON2.time_cost
    argon2_memory_kib: int = _ARGON2.memory_cost
    argon2_parallelism: int = _ARGON2.parallelism
    # The first HQ admin, created on an empty database when a password is given.
    bootstrap_admin_username: str = "admin"
    bootstrap_admin_password: str = ""

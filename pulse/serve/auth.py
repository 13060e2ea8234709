"""Bearer API keys: loaded from an env var and/or a secret file, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import os

from pulse import io
from pulse.serve.config import LOCAL_HOSTS, AuthConfig


class AuthSetupError(ValueError):
    """The auth settings cannot be used safely (e.g. no key while binding a public host)."""


def load_api_keys(cfg: AuthConfig) -> list[str]:
    """All configured keys (env var value may hold several, comma-separated; file: one per line, ``#`` comments).

    A source that is configured but yields no key is an error, never "auth off": an env var
    that is set but empty or only commas, or a key file with no key in it.
    """
    keys: list[str] = []
    if cfg.api_key_env and cfg.api_key_env in os.environ:
        from_env = [k.strip() for k in os.environ[cfg.api_key_env].split(",") if k.strip()]
        if not from_env:
            raise AuthSetupError(
                f"${cfg.api_key_env} is set but holds no API key; unset it to run without a key"
            )
        keys += from_env
    if cfg.api_key_file:
        if not io.exists(cfg.api_key_file):
            raise AuthSetupError(f"auth.api_key_file does not exist: {cfg.api_key_file}")
        lines = [line.strip() for line in io.read_text(cfg.api_key_file).splitlines()]
        from_file = [k for k in lines if k and not k.startswith("#")]
        if not from_file:
            raise AuthSetupError(f"auth.api_key_file holds no API key: {cfg.api_key_file}")
        keys += from_file
    return keys


def check_binding(host: str, keys: list[str], cfg: AuthConfig) -> None:
    """Refuse to expose an unauthenticated endpoint beyond this machine unless explicitly allowed."""
    if not keys and host not in LOCAL_HOSTS and not cfg.allow_unauthenticated_remote:
        raise AuthSetupError(
            f"host={host!r} without an API key: set ${cfg.api_key_env} or auth.api_key_file, "
            "bind host=127.0.0.1, or set auth.allow_unauthenticated_remote=true"
        )


def key_digest(key: str) -> str:
    """SHA-256 hex digest of a key: what replicas receive, so no key travels in Serve's config."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyChecker:
    """Checks ``Authorization: Bearer <key>`` headers against the configured keys' digests."""

    def __init__(self, digests: list[bytes]):
        self._digests = digests

    @classmethod
    def from_keys(cls, keys: list[str]) -> KeyChecker:
        return cls([hashlib.sha256(k.encode()).digest() for k in keys])

    @classmethod
    def from_digests(cls, hex_digests: list[str]) -> KeyChecker:
        return cls([bytes.fromhex(d) for d in hex_digests])

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def check(self, authorization: str | None) -> str | None:
        """None when allowed, else the reason for a 401."""
        if not self.enabled:
            return None
        if not authorization:
            return "Missing API key: send 'Authorization: Bearer <key>'"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "Malformed Authorization header: expected 'Bearer <key>'"
        digest = hashlib.sha256(token.strip().encode()).digest()
        # Compare against every key so timing does not reveal which (or whether any) matched early.
        matched = False
        for known in self._digests:
            matched |= hmac.compare_digest(digest, known)
        return None if matched else "Invalid API key"

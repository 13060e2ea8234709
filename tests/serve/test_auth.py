"""API keys: env var and secret file, bearer checks, and the local-only rule without a key."""

from __future__ import annotations

import pytest

from pulse.serve.auth import AuthSetupError, KeyChecker, check_binding, key_digest, load_api_keys
from pulse.serve.config import AuthConfig


def test_keys_from_env_and_secret_file(tmp_path, monkeypatch):
    secret = tmp_path / "keys"
    secret.write_text("# comment\nfile-key\n\n")
    monkeypatch.setenv("PULSE_TEST_KEYS", "env-a, env-b")
    keys = load_api_keys(AuthConfig(api_key_env="PULSE_TEST_KEYS", api_key_file=str(secret)))
    assert keys == ["env-a", "env-b", "file-key"]


def test_keys_from_a_secret_file_on_s3(s3_bucket):
    from pulse import io

    io.write_text(f"{s3_bucket}/keys.txt", "s3-key\n")
    assert load_api_keys(AuthConfig(api_key_env=None, api_key_file=f"{s3_bucket}/keys.txt")) == ["s3-key"]


def test_missing_secret_file_is_an_error(tmp_path):
    with pytest.raises(AuthSetupError, match="does not exist"):
        load_api_keys(AuthConfig(api_key_file=str(tmp_path / "nope")))


def test_bearer_check():
    checker = KeyChecker.from_digests([key_digest("k1"), key_digest("k2")])
    assert checker.check("Bearer k2") is None
    assert checker.check("bearer k1") is None
    assert checker.check(None) and "Missing" in checker.check(None)
    assert checker.check("Bearer nope") == "Invalid API key"
    assert "Malformed" in checker.check("Basic k1")
    assert KeyChecker.from_keys([]).check(None) is None


def test_no_key_means_local_only_unless_overridden():
    cfg = AuthConfig()
    check_binding("127.0.0.1", [], cfg)
    check_binding("0.0.0.0", ["k"], cfg)
    with pytest.raises(AuthSetupError, match="without an API key"):
        check_binding("0.0.0.0", [], cfg)
    check_binding("0.0.0.0", [], AuthConfig(allow_unauthenticated_remote=True))


@pytest.mark.parametrize("value", ["", "   ", ",", " , ,"])
def test_a_key_env_var_that_is_set_but_empty_refuses_to_start(monkeypatch, value):
    monkeypatch.setenv("PULSE_TEST_KEYS", value)
    with pytest.raises(AuthSetupError, match="holds no API key"):
        load_api_keys(AuthConfig(api_key_env="PULSE_TEST_KEYS"))


def test_an_unset_key_env_var_means_no_key(monkeypatch):
    monkeypatch.delenv("PULSE_TEST_KEYS", raising=False)
    assert load_api_keys(AuthConfig(api_key_env="PULSE_TEST_KEYS")) == []


def test_a_key_file_without_keys_refuses_to_start(tmp_path):
    secret = tmp_path / "keys"
    secret.write_text("# only a comment\n\n   \n")
    with pytest.raises(AuthSetupError, match="holds no API key"):
        load_api_keys(AuthConfig(api_key_env=None, api_key_file=str(secret)))


def test_an_env_key_that_starts_with_a_hash_is_kept(monkeypatch):
    monkeypatch.setenv("PULSE_TEST_KEYS", "#sk-hash-key")
    assert load_api_keys(AuthConfig(api_key_env="PULSE_TEST_KEYS")) == ["#sk-hash-key"]

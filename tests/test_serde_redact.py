"""Masking secrets in text: URL passwords and password=... values."""

from __future__ import annotations

import pytest

from legato._redact import is_secret_name, redact, redact_url

SECRET = "s3cret"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("http://user:s3cret@host/v1", "http://user:***@host/v1"),
        ("postgresql://app:s3cret@db/prod", "postgresql://app:***@db/prod"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("amqp://u:p@ss@broker/vh", "amqp://u:***@broker/vh"),  # "@" in the password
        ("GET https://bob:s3cret@api.x/v1 → 503", "GET https://bob:***@api.x/v1 → 503"),
        ("a http://a:1@h b ftp://b:2@k", "a http://a:***@h b ftp://b:***@k"),
        ("host=db user=app password=s3cret port=5432", "host=db user=app password=*** port=5432"),
        ("https://h/cb?code=1&access_token=s3cret&x=2", "https://h/cb?code=1&access_token=***&x=2"),
        ("Settings(api_key='s3cret', retries=3)", "Settings(api_key='***', retries=3)"),
        ("{'password': 's3cret', 'user': 'app'}", "{'password': '***', 'user': 'app'}"),
        ('{"client_secret": "s3cret"}', '{"client_secret": "***"}'),
        ("PASSWORD = s3cret", "PASSWORD = ***"),
        # left alone: no credentials, or nothing secret-named
        ("https://user@host/v1", "https://user@host/v1"),
        ("http://host:8080/path@v2", "http://host:8080/path@v2"),
        ("max_tokens=512 tokenizer=gpt2", "max_tokens=512 tokenizer=gpt2"),
        ("postgresql://app:***@db/prod", "postgresql://app:***@db/prod"),
        ("", ""),
    ],
)
def test_redact_masks_credentials_in_text(text: str, want: str) -> None:
    assert redact(text) == want
    assert redact(want) == want  # masking twice changes nothing


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("postgresql://app:s3cret@db/prod", "postgresql://app:***@db/prod"),
        ("postgresql://app:p%40ss@db:5432/prod?schema=s", "postgresql://app:***@db:5432/prod?schema=s"),
        ("postgresql://app@db/prod?password=s3cret&schema=s", "postgresql://app@db/prod?password=***&schema=s"),
        ("postgresql://app:p@ss@db/prod", "postgresql://app:***@db/prod"),
        ("postgresql://db/prod", "postgresql://db/prod"),
        ("sqlite:///var/lib/legato.db?synchronous=full", "sqlite:///var/lib/legato.db?synchronous=full"),
        ("legato.db", "legato.db"),
    ],
)
def test_redact_url_masks_the_password_for_display(url: str, want: str) -> None:
    assert redact_url(url) == want


def test_redact_is_fast_on_huge_text() -> None:
    text = "x" * 2_000_000 + " http://u:s3cret@h " + "://a:" * 200_000
    assert SECRET not in redact(text)  # linear patterns: this returns at once


@pytest.mark.parametrize(
    ("name", "secret"),
    [("password", True), ("db_password", True), ("api_token", True), ("API-KEY", True),
     ("client_secret", True), ("max_tokens", False), ("user", False), ("secretary", False)],
)
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret

"""Secrets stay out of the store and out of reprs: URL passwords and password=... values."""

from __future__ import annotations

import pytest

import legato
from legato._redact import is_secret_name, redact, redact_url
from legato._serde import JsonSerializer, decode_error, encode_error
from legato.store import SqliteStore
from legato.store._postgres import PostgresStore

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


def connect() -> None:
    raise ConnectionError("can't reach http://user:s3cret@api.example/v1")  # in the traceback too


def test_a_recorded_error_holds_no_password() -> None:
    try:
        connect()
    except ConnectionError as exc:
        exc.add_note("store: postgresql://app:s3cret@db/prod")
        exc.dsn = "host=db password=s3cret"  # type: ignore[attr-defined]
        caught = exc
    ser = JsonSerializer()
    data = ser.dumps(encode_error(caught), label="the error of step 'connect'")
    assert SECRET.encode() not in data
    assert b"user:***@api.example" in data and b'raise ConnectionError(' in data
    got = decode_error(ser.loads(data))
    assert type(got) is ConnectionError
    assert str(got) == "can't reach http://user:***@api.example/v1"
    assert got.__notes__ == ["store: postgresql://app:***@db/prod"]
    assert got.dsn == "host=db password=***"  # type: ignore[attr-defined]


class LoginFailed(Exception):
    def __init__(self, settings: dict[str, str]) -> None:
        super().__init__(settings)
        self.api_token = settings["token"]


def test_secret_named_values_in_args_and_attributes_are_masked() -> None:
    exc = LoginFailed({"user": "app", "password": SECRET, "token": SECRET})
    data = JsonSerializer().dumps(encode_error(exc))
    assert SECRET.encode() not in data
    got = decode_error(JsonSerializer().loads(data))
    assert type(got) is LoginFailed and got.api_token == "***"
    assert str(got) == "{'user': 'app', 'password': '***', 'token': '***'}"


@pytest.mark.parametrize(
    ("name", "secret"),
    [("password", True), ("db_password", True), ("api_token", True), ("API-KEY", True),
     ("client_secret", True), ("max_tokens", False), ("user", False), ("secretary", False)],
)
def test_is_secret_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_store_and_runtime_reprs_hide_the_postgresql_password() -> None:
    url = "postgresql://app:s3cret@127.0.0.1/test?schema=s"
    store = PostgresStore(url)  # connects only when opened
    assert store.dsn.startswith("postgresql://app:s3cret@")  # what it connects with
    assert SECRET not in store.url and SECRET not in repr(store)
    assert store.url == "postgresql://app:***@127.0.0.1/test?schema=s"
    assert SECRET not in repr(legato.Runtime(url))


def test_sqlite_store_url_is_shown_as_given() -> None:
    store = SqliteStore("sqlite:///tmp/x.db?synchronous=full")
    assert store.url == "sqlite:///tmp/x.db?synchronous=full"
    assert repr(store) == "SqliteStore('sqlite:///tmp/x.db?synchronous=full')"

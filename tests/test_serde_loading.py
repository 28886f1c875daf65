"""Loading stored data never imports a module or calls a class of the wrong kind."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import legato
from legato._errors import SerializationError, StepFailed
from legato._serde import JsonSerializer, decode_error

SER = JsonSerializer()
EVIL = """
import pathlib
pathlib.Path({marker!r}).write_text("the module ran")


class Boom(Exception):
    pass


class Thing:
    pass
"""

CALLS: list[Any] = []


class NotAnError:
    """Exists here, but is no exception: decoding must not call it."""

    def __new__(cls, *args: Any) -> NotAnError:
        CALLS.append(("new", args))
        return super().__new__(cls)

    def __init__(self, *args: Any) -> None:
        CALLS.append(("init", args))


class Impostor:
    """Has the methods the namedtuple and pydantic decoders call, but is neither."""

    @classmethod
    def _make(cls, value: Any) -> None:
        CALLS.append(("_make", value))

    @classmethod
    def model_validate(cls, value: Any) -> None:
        CALLS.append(("model_validate", value))


@pytest.fixture(autouse=True)
def _no_calls() -> None:
    CALLS.clear()


@pytest.fixture
def evil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A module ``evil_xyz`` on ``sys.path`` that leaves a marker file when imported."""
    marker = tmp_path / "evil_ran"
    (tmp_path / "evil_xyz.py").write_text(EVIL.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "evil_xyz" not in sys.modules
    yield marker
    sys.modules.pop("evil_xyz", None)


def test_decoding_an_error_never_imports_the_module_it_names(evil: Path) -> None:
    got = decode_error({"type": "evil_xyz:Boom", "message": "hi", "args": ["hi"]})
    assert not evil.exists() and "evil_xyz" not in sys.modules
    assert isinstance(got, StepFailed)
    assert (got.type_name, got.message) == ("evil_xyz.Boom", "hi")


@pytest.mark.parametrize("kind", ["dataclass", "enum", "namedtuple", "pydantic"])
def test_loading_a_value_never_imports_the_module_it_names(evil: Path, kind: str) -> None:
    data = orjson.dumps({"$legato": kind, "cls": "evil_xyz:Thing", "v": {}})
    with pytest.raises(SerializationError) as info:
        SER.loads(data)
    assert not evil.exists() and "evil_xyz" not in sys.modules
    message = str(info.value)
    assert "evil_xyz.Thing" in message and "'evil_xyz' is not imported" in message
    assert "import the module that defines it before loading" in message


def test_an_error_inside_a_value_never_imports_its_module(evil: Path) -> None:
    inner = {"type": "evil_xyz:Boom", "message": "m", "args": ["m"]}
    got = SER.loads(orjson.dumps({"errors": [{"$legato": "error", "v": inner}]}))
    assert not evil.exists()
    assert isinstance(got["errors"][0], StepFailed)


def test_listing_failed_workflows_never_imports_a_module_a_row_names(
    evil: Path, sqlite_db: str
) -> None:
    @legato.workflow(name="fails_plainly")
    async def fails_plainly() -> None:
        raise ValueError("plain")

    async def list_failed() -> list[str | None]:
        async with legato.Runtime(sqlite_db) as rt:
            with pytest.raises(ValueError, match="plain"):
                await rt.run(fails_plainly, id="w")
        crafted = orjson.dumps({"type": "evil_xyz:Boom", "message": "crafted", "args": ["x"]})
        with sqlite3.connect(sqlite_db) as conn:  # someone with write access to the store
            conn.execute("UPDATE workflows SET error = ? WHERE id = 'w'", (crafted,))
        async with legato.Runtime(sqlite_db, worker=False) as rt:
            return [info.error for info in await rt.list(status="failed")]

    # the listing shows the stored type's name and message without loading the type
    assert asyncio.run(list_failed()) == ["Boom: crafted"]
    assert not evil.exists() and "evil_xyz" not in sys.modules


def test_a_class_that_is_not_an_exception_is_never_called_as_one() -> None:
    ref = f"{__name__}:NotAnError"
    got = decode_error({"type": ref, "message": "m", "args": ["m"]})
    assert isinstance(got, StepFailed) and got.type_name == f"{__name__}.NotAnError"
    assert CALLS == []


@pytest.mark.parametrize("kind", ["namedtuple", "pydantic"])
def test_a_class_of_the_wrong_kind_is_never_called(kind: str) -> None:
    data = orjson.dumps({"$legato": kind, "cls": f"{__name__}:Impostor", "v": [1]})
    with pytest.raises(SerializationError, match=rf"Impostor as a {kind}"):
        SER.loads(data)
    assert CALLS == []


@pytest.mark.parametrize(
    "ref", ["builtins:ValueError.__subclasses__", "os:system", "builtins:", ":ValueError", "x"]
)
def test_references_that_are_not_plain_class_names_are_refused(ref: str) -> None:
    got = decode_error({"type": ref, "message": "m", "args": ["rm -rf /"]})
    assert isinstance(got, StepFailed)


def test_types_of_imported_modules_still_load() -> None:
    got = SER.loads(SER.dumps({"error": KeyError("k"), "path": Path("/x").parts}))
    assert type(got["error"]) is KeyError and got["path"] == ("/", "x")

"""Recorded errors are never lost: any exception is stored, bounded, and comes back as its type."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson
import pytest

import legato
from legato._errors import StepFailed
from legato._serde import JsonSerializer, PickleSerializer, decode_error, encode_error

# -- module-level exceptions, found again by "module:qualname" -----------------------


class NeedsArgs(Exception):
    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")  # args hold the message, not (code, detail)


class NeedsKwOnly(Exception):
    def __init__(self, *, code: int, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


class KeepsState(Exception):
    """An error whose __str__ reads attributes its __init__ does not take back from args."""

    def __init__(self, user: str, limit: int) -> None:
        super().__init__(f"{user}/{limit}")
        self.user, self.limit = user, limit

    def __str__(self) -> str:
        return f"{self.user} is over {self.limit}"


class BadStr(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


class BadArgs(Exception):
    @property  # type: ignore[override]
    def args(self) -> Any:
        raise RuntimeError("args is broken")


class NoNew(Exception):
    def __new__(cls, *args: Any) -> NoNew:
        raise RuntimeError("never built")


def raise_and_catch(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def stored(exc: BaseException, ser: Any = None) -> BaseException:
    """What a workflow sees on replay: ``exc`` recorded by ``ser``, loaded, rebuilt."""
    ser = ser or JsonSerializer()
    return decode_error(ser.loads(ser.dumps(encode_error(exc), label="the error")))


# -- the three ways errors were lost -------------------------------------------------


def test_error_with_a_lone_surrogate_in_its_message_is_stored_escaped() -> None:
    got = stored(raise_and_catch(ValueError("bad \ud800 byte")))
    assert type(got) is ValueError
    assert str(got) == "bad \\ud800 byte"


def test_error_over_the_size_limit_is_stored_cut_to_fit() -> None:
    ser = JsonSerializer(max_size=4_000)
    exc = raise_and_catch(RuntimeError("start " + "x" * 50_000 + " end"))
    data = ser.dumps(encode_error(exc), label="the error of step 'big'")
    assert len(data) <= 4_000
    got = decode_error(ser.loads(data))
    assert type(got) is RuntimeError
    assert str(got).startswith("start xxx") and str(got).endswith("xxx end")
    assert "characters, cut to fit" in str(got)


def test_error_over_the_default_limit_fits_with_the_default_serializer() -> None:
    ser = JsonSerializer()
    data = ser.dumps(encode_error(raise_and_catch(ValueError("y" * 3_000_000))))
    assert len(data) <= ser.max_size
    assert type(decode_error(ser.loads(data))) is ValueError


def test_error_whose_init_takes_other_arguments_comes_back_as_its_type() -> None:
    got = stored(raise_and_catch(NeedsArgs(404, "not found")))
    assert type(got) is NeedsArgs
    assert str(got) == "404: not found" and got.args == ("404: not found",)
    with pytest.raises(NeedsArgs):
        raise got


def test_error_with_required_keyword_only_arguments_comes_back_with_its_attributes() -> None:
    got = stored(raise_and_catch(NeedsKwOnly(code=7, detail="gone")))
    assert type(got) is NeedsKwOnly
    assert str(got) == "7: gone" and got.code == 7


def test_attributes_set_outside_init_are_restored() -> None:
    exc = KeepsState("ada", 3)
    exc.user = "bob"  # the raiser changed it after construction
    got = stored(raise_and_catch(exc))
    assert type(got) is KeepsState and str(got) == "bob is over 3"


def test_unserializable_attribute_is_dropped_and_the_rest_kept() -> None:
    exc = NeedsKwOnly(code=5, detail="locked")
    exc.lock = threading.Lock()  # type: ignore[attr-defined]
    got = stored(raise_and_catch(exc))
    assert type(got) is NeedsKwOnly and got.code == 5 and not hasattr(got, "lock")


def test_error_with_unserializable_args_comes_back_as_its_type_with_its_message() -> None:
    exc = raise_and_catch(RuntimeError(threading.Lock()))
    got = stored(exc)
    assert type(got) is RuntimeError and str(got) == str(exc)


def test_notes_with_surrogates_are_kept() -> None:
    exc = raise_and_catch(NeedsArgs(1, "x"))
    exc.add_note("while reading \udcff")
    got = stored(exc)
    assert type(got) is NeedsArgs and got.__notes__ == ["while reading \\udcff"]


def test_traceback_is_cut_to_fit_keeping_its_last_lines() -> None:
    caught: BaseException | None = None
    for level in range(100):  # a long chain: each cause is printed before the next
        try:
            raise ValueError(f"at level {level}") from caught
        except ValueError as exc:
            caught = exc
    assert caught is not None
    record = encode_error(caught, max_size=3_000)
    assert len(orjson.dumps(record)) <= 3_000
    assert record["traceback"].startswith("Traceback (most recent call last):")
    assert record["traceback"].endswith("ValueError: at level 99\n")
    assert "characters, cut to fit" in record["traceback"]


async def test_a_step_error_with_other_init_arguments_keeps_the_replay_on_its_path(
    sqlite_db: str,
) -> None:
    """``except NeedsArgs`` matched on the first run, so it must on replay."""
    gate, entered = asyncio.Event(), asyncio.Event()

    @legato.step
    async def call_api() -> None:
        raise NeedsArgs(503, "unavailable")

    @legato.step
    async def wait_for_gate() -> None:
        entered.set()
        await gate.wait()

    @legato.workflow(name="replay_needs_args")
    async def replay_needs_args() -> str:
        try:
            await call_api()
        except NeedsArgs as exc:
            path = f"handled {exc}"
        except Exception as exc:
            path = f"other path: {type(exc).__name__}"
        await wait_for_gate()
        return path

    async with legato.Runtime(sqlite_db) as rt:
        await rt.start(replay_needs_args, id="r")
        await entered.wait()  # the error is recorded; leave before the workflow ends
    gate.set()
    async with legato.Runtime(sqlite_db) as rt:  # replays call_api from the history
        assert await rt.handle("r").result(timeout=10) == "handled 503: unavailable"


# -- encode_error never raises -------------------------------------------------------


def _in_its_own_args() -> BaseException:
    exc = ValueError("loop")
    exc.args = ("loop", exc)
    return exc


def _with_bad_notes() -> BaseException:
    exc = ValueError("notes")
    exc.__notes__ = [b"bytes \xff", object(), "\ud800"]  # type: ignore[list-item]
    return exc


def _with_odd_dict() -> BaseException:
    exc = ValueError("odd")
    vars(exc).update({1: "int key", "blob": b"\x00" * 10, "text": "\ud800" * 3})
    return exc


NASTY = [
    pytest.param(lambda: BadStr("boom"), id="__str__-raises"),
    pytest.param(lambda: BadArgs("boom"), id="args-raises"),
    pytest.param(lambda: ValueError("z" * 5_000_000), id="huge-message"),
    pytest.param(lambda: ValueError("\ud800" * 1000, "\udfff"), id="surrogates"),
    pytest.param(lambda: NeedsKwOnly(code=1, detail="kw"), id="required-kw-only"),
    pytest.param(lambda: RuntimeError(threading.Lock(), object()), id="unserializable-args"),
    pytest.param(_in_its_own_args, id="cycle"),
    pytest.param(_with_bad_notes, id="bad-notes"),
    pytest.param(_with_odd_dict, id="odd-dict"),
    pytest.param(lambda: ExceptionGroup("many", [ValueError("v" * 9_000)] * 200), id="big-group"),
    pytest.param(lambda: KeyboardInterrupt(), id="base-exception"),
]


@pytest.mark.parametrize("make", NASTY)
@pytest.mark.parametrize("ser", [JsonSerializer(max_size=2_000), PickleSerializer(max_size=2_000),
                                 JsonSerializer()], ids=["json-2k", "pickle-2k", "json"])
def test_any_exception_is_recorded_within_the_size_limit(make: Any, ser: Any) -> None:
    exc = raise_and_catch(make())
    record = encode_error(exc)
    data = ser.dumps(record, label="the error")
    assert len(data) <= ser.max_size
    got = decode_error(ser.loads(data))
    assert isinstance(got, BaseException)
    assert type(got) in (type(exc), StepFailed)


def test_an_error_whose_str_raises_comes_back_as_its_type() -> None:
    record = encode_error(raise_and_catch(BadStr("boom")))
    assert record["message"] == "<unprintable BadStr>"
    got = decode_error(record)
    assert type(got) is BadStr and got.args == ("boom",)


def test_an_error_whose_str_needs_lost_attributes_becomes_step_failed() -> None:
    exc = KeepsState("ada", 3)
    exc.limit = threading.Lock()  # type: ignore[assignment]  # dropped, so str() would raise
    got = stored(raise_and_catch(exc))
    assert isinstance(got, StepFailed) and got.type_name.endswith(".KeepsState")
    assert got.message.startswith("ada is over <unlocked _thread.lock")


def test_an_error_that_cannot_be_built_again_becomes_step_failed() -> None:
    exc = BaseException.__new__(NoNew, "no way")
    got = stored(raise_and_catch(exc))
    assert isinstance(got, StepFailed) and got.message == "no way"

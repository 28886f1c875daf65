"""Tests for legato._serde: JSON round-trips, error messages, size limits, pickle, errors."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
import math
import re
import sys
import threading
import uuid
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import orjson
import pydantic
import pytest

from legato._errors import LegatoError, PayloadTooLarge, SerializationError, StepFailed
from legato._serde import (
    JsonSerializer,
    PickleSerializer,
    decode_error,
    default_serializer,
    encode_error,
)

# -- module-level types, importable by "module:qualname" -----------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = (0, 0, 255)


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Perm(enum.IntFlag):
    R = 4
    W = 2


class Mode(enum.StrEnum):
    FAST = "fast"


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float


@dataclasses.dataclass(slots=True)
class Order:
    id: uuid.UUID
    points: list[Point]
    tags: frozenset[str] = frozenset()
    total: Decimal = Decimal("0")
    checksum: str = dataclasses.field(init=False, default="")

    def __post_init__(self) -> None:
        self.checksum = f"{len(self.points)}:{self.total}"


@dataclasses.dataclass
class Conn:
    conn: Any


class Pair(NamedTuple):
    left: int
    right: tuple[int, ...]


class Address(pydantic.BaseModel):
    city: str
    since: dt.date


class Customer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=False)

    name: str = pydantic.Field(alias="fullName")
    joined: dt.datetime
    address: Address
    scores: tuple[int, ...] = ()
    meta: dict[Any, Any] = {}

    @pydantic.computed_field  # type: ignore[prop-decorator]
    @property
    def initial(self) -> str:
        return self.name[:1]


class QuotaExceeded(Exception):
    def __init__(self, user: str, limit: int) -> None:
        super().__init__(user, limit)
        self.user = user
        self.limit = limit

    def __str__(self) -> str:
        return f"{self.user} is over the quota of {self.limit}"


class NeedsKwargs(Exception):
    def __init__(self, *, code: int) -> None:
        super().__init__(f"failed with code {code}")


class Reworded(Exception):
    def __init__(self, code: int | str) -> None:
        super().__init__(f"failed with code {code}")  # args hold the message, not the code


CALLS: list[Any] = []
OPAQUE: Any = object()  # a value with no JSON form


def trap(*args: Any, **kwargs: Any) -> Any:
    """Decoding must never call this, whatever a payload claims it is."""
    CALLS.append((args, kwargs))
    return Color.RED


# -- helpers -------------------------------------------------------------------------

SER = JsonSerializer()


def roundtrip(value: Any) -> Any:
    return SER.loads(SER.dumps(value))


def assert_same(got: Any, want: Any) -> None:
    """Equal, and the same types all the way down (a list is not a tuple here)."""
    assert type(got) is type(want), f"{got!r} is {type(got)}, expected {type(want)}"
    assert got == want
    if isinstance(want, Decimal):
        assert str(got) == str(want)  # Decimal("1.10") == Decimal("1.1"), but not exact
    elif isinstance(want, dt.datetime | dt.time):
        assert (got.tzinfo, got.fold) == (want.tzinfo, want.fold)
    elif isinstance(want, list | tuple):
        for g, w in zip(got, want, strict=True):
            assert_same(g, w)
    elif isinstance(want, dict):
        for (gk, gv), (wk, wv) in zip(got.items(), want.items(), strict=True):
            assert_same(gk, wk)
            assert_same(gv, wv)
    elif dataclasses.is_dataclass(want):
        for f in dataclasses.fields(want):
            assert_same(getattr(got, f.name), getattr(want, f.name))


def raise_and_catch(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


# -- plain JSON ----------------------------------------------------------------------

PLAIN: list[Any] = [
    None,
    True,
    0,
    -(2**63),
    2**64 - 1,
    1.5,
    -0.0,
    "",
    "héllo ✓",
    [],
    {},
    {"a": 1, "b": "x", "c": [1.0, None, {"d": [True, False]}]},
]


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_plain_values_are_written_as_plain_json(value: Any) -> None:
    data = SER.dumps(value)
    assert data == orjson.dumps(value)
    assert_same(SER.loads(data), value)


def test_plain_json_written_elsewhere_loads() -> None:
    assert SER.loads(b'{"x": [1, 2.5, "s", null]}') == {"x": [1, 2.5, "s", None]}


# -- extended types ------------------------------------------------------------------

EXTENDED = [
    (1, "a", (2.0, None)),
    (),
    {3, 1, 2},
    frozenset({"x", "y"}),
    b"\x00\xff bytes",
    bytearray(b"mutable"),
    dt.datetime(2024, 2, 29, 13, 14, 15, 123456),
    dt.datetime(2024, 1, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30))),
    dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC),
    dt.datetime(2024, 7, 1, 8, 0, tzinfo=ZoneInfo("Europe/Paris")),
    dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris")),
    dt.date(1999, 12, 31),
    dt.time(23, 59, 59, 999999),
    dt.time(8, 0, tzinfo=dt.timezone(dt.timedelta(hours=5))),
    dt.timedelta(days=-2, seconds=5, microseconds=7),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("1.10"),
    Decimal("-0E+7"),
    Decimal("Infinity"),
    2**64,
    -(2**63) - 1,
    -(10**5000),  # beyond str(int)'s default 4300-digit limit
    float("inf"),
    float("-inf"),
    Color.RED,
    Color.BLUE,
    Level.HIGH,
    Perm.R | Perm.W,
    Mode.FAST,
    Point(1, 2.5),
    Pair(1, (2, 3)),
    {1: "int key", (1, 2): "tuple key", None: "none key", Color.RED: "enum key"},
    {"$legato": "tuple", "v": [1, 2]},  # a user dict that looks like a tag
    {"outer": {"$legato": "x"}, "list": [{"$legato": 1}]},
]


@pytest.mark.parametrize("value", EXTENDED, ids=lambda v: type(v).__name__)
@pytest.mark.parametrize(
    "wrap",
    [lambda v: v, lambda v: [v], lambda v: {"k": v}, lambda v: (v, v)],
    ids=["bare", "in-list", "in-dict", "in-tuple"],
)
def test_extended_types_round_trip_exactly(value: Any, wrap: Any) -> None:
    assert_same(roundtrip(wrap(value)), wrap(value))


def test_nan_round_trips_as_nan() -> None:
    assert math.isnan(roundtrip(float("nan")))
    assert roundtrip(Decimal("NaN")).is_nan()


def test_aware_datetime_keeps_its_offset_and_zone() -> None:
    fixed = dt.datetime(2024, 1, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-3)))
    assert roundtrip(fixed).utcoffset() == dt.timedelta(hours=-3)
    zoned = roundtrip(dt.datetime(2024, 1, 1, 9, 0, tzinfo=ZoneInfo("America/New_York")))
    assert zoned.tzinfo == ZoneInfo("America/New_York")
    assert zoned.utcoffset() == dt.timedelta(hours=-5)
    ambiguous = dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Paris"))
    assert roundtrip(ambiguous).utcoffset() == dt.timedelta(hours=1)


def test_nested_structure_round_trips_with_all_types() -> None:
    order = Order(
        id=uuid.UUID(int=7),
        points=[Point(0, 0.5), Point(-1, 1e300)],
        tags=frozenset({"a", "b"}),
        total=Decimal("19.99"),
    )
    value = {
        "orders": [order, order],
        "index": {(0, "a"): {Level.LOW, Level.HIGH}},
        "at": dt.datetime(2024, 5, 5, tzinfo=dt.UTC),
        "raw": [b"x", bytearray(b"y"), None],
    }
    got = roundtrip(value)
    assert_same(got, value)
    assert got["orders"][0].checksum == "2:19.99"


def test_dataclass_init_false_field_is_restored_as_stored() -> None:
    order = Order(id=uuid.UUID(int=1), points=[])
    order.checksum = "set later"  # differs from what __post_init__ computes
    assert roundtrip(order).checksum == "set later"


def test_pydantic_model_round_trips_with_alias_and_computed_field() -> None:
    customer = Customer(
        fullName="Ada Lovelace",
        joined=dt.datetime(2020, 1, 2, 3, 4, tzinfo=dt.UTC),
        address=Address(city="London", since=dt.date(1835, 7, 8)),
        scores=(3, 1),
        meta={1: b"\x01", "k": {2, 3}},
    )
    got = roundtrip({"customer": customer})["customer"]
    assert type(got) is Customer
    assert got == customer
    assert_same(got.scores, (3, 1))
    assert_same(got.meta, {1: b"\x01", "k": {2, 3}})
    assert type(got.address) is Address and got.initial == "A"


def test_sets_are_written_in_a_stable_order() -> None:
    assert SER.dumps({"b", "c", "a"}) == b'{"$legato":"set","v":["a","b","c"]}'


def test_subclasses_of_builtins_are_stored_as_the_builtin() -> None:
    got = roundtrip(collections.OrderedDict(a=1, b=(2,)))
    assert_same(got, {"a": 1, "b": (2,)})


# -- values that can't be serialized -------------------------------------------------


def test_unserializable_value_names_label_path_type_and_fix() -> None:
    lock = threading.Lock()
    with pytest.raises(SerializationError) as info:
        SER.dumps({"items": [1, 2, Conn(conn=lock)]}, label="argument 'payload' of step 'fetch'")
    message = str(info.value)
    assert message.startswith("argument 'payload' of step 'fetch' → at value['items'][2].conn: ")
    assert "_thread.lock can't be serialized as JSON" in message
    assert "dataclass" in message and "PickleSerializer()" in message
    assert isinstance(info.value, TypeError) and isinstance(info.value, LegatoError)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (object(), "value"),
        ((1, [object()]), "value[1][0]"),
        ({1: object()}, "value[1]"),
        ({object(): 1}, "value<key #0>"),
        (Pair(1, (OPAQUE,)), "value.right[0]"),
        ({frozenset({object()})}, "value{…}{…}"),
    ],
)
def test_error_path_points_at_the_bad_value(value: Any, path: str) -> None:
    with pytest.raises(SerializationError, match=re.escape(f" → at {path}: ")):
        SER.dumps(value)


def test_local_class_is_refused_with_a_clear_reason() -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    with pytest.raises(SerializationError, match=r"defined inside a function.*module level"):
        SER.dumps([Local(1)], label="result of step 'make'")


def test_class_not_importable_by_its_name_is_refused() -> None:
    Ghost = dataclasses.make_dataclass("Ghost", [("x", int)])
    Ghost.__module__ = __name__  # but this module has no attribute Ghost
    with pytest.raises(SerializationError, match=r"can't be found under its name .*Ghost"):
        SER.dumps(Ghost(1))


def test_class_in_main_round_trips_while_main_defines_it(monkeypatch: Any) -> None:
    MainPoint = dataclasses.make_dataclass("MainPoint", [("x", int)])
    MainPoint.__module__ = "__main__"
    monkeypatch.setattr(sys.modules["__main__"], "MainPoint", MainPoint, raising=False)
    data = SER.dumps(MainPoint(3))
    assert b'"__main__:MainPoint"' in data
    assert SER.loads(data) == MainPoint(3)
    monkeypatch.delattr(sys.modules["__main__"], "MainPoint")  # another process's __main__
    with pytest.raises(SerializationError, match=r"__main__\.MainPoint.*same script"):
        SER.loads(data)


def test_cycle_and_lone_surrogate_raise_serialization_error() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError, match="cycle"):
        SER.dumps(cycle, label="cyclic")
    with pytest.raises(SerializationError, match="surrogates"):
        SER.dumps("\ud800")


# -- decoding stored data ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["enum", "dataclass", "pydantic", "namedtuple"])
def test_loads_never_calls_a_callable_a_payload_names(kind: str) -> None:
    data = orjson.dumps({"$legato": kind, "cls": f"{__name__}:trap", "v": "red"})
    with pytest.raises(SerializationError, match=r"trap as"):
        SER.loads(data)
    assert CALLS == []


def test_loads_reports_a_class_that_no_longer_imports() -> None:
    data = b'{"$legato":"dataclass","cls":"no_such_module_xyz:Thing","v":{}}'
    with pytest.raises(SerializationError, match=r"no_such_module_xyz\.Thing.*can't be imported"):
        SER.loads(data)


@pytest.mark.parametrize(
    "data",
    [b"{not json", b'{"$legato":"from-the-future","v":1}', b'{"$legato":"tuple"}'],
)
def test_loads_of_bad_data_raises_serialization_error(data: bytes) -> None:
    with pytest.raises(SerializationError):
        SER.loads(data)


# -- size limit and settings ---------------------------------------------------------


def test_payload_too_large_names_label_size_limit_and_fix() -> None:
    ser = JsonSerializer(max_size=100)
    assert ser.dumps("x" * 98) == b'"' + b"x" * 98 + b'"'  # exactly 100 bytes is allowed
    with pytest.raises(PayloadTooLarge) as info:
        ser.dumps("x" * 99, label="result of step 'download'")
    message = str(info.value)
    assert "result of step 'download'" in message
    assert "101 bytes" in message and "limit of 100 bytes" in message
    assert "JsonSerializer(max_size=...)" in message
    assert isinstance(info.value, SerializationError) and isinstance(info.value, TypeError)


def test_serializers_compare_and_show_by_settings() -> None:
    assert JsonSerializer() == JsonSerializer(max_size=2 * 1024 * 1024) == default_serializer()
    assert JsonSerializer(max_size=10) != JsonSerializer(max_size=11)
    other: object = PickleSerializer(max_size=10)
    assert JsonSerializer(max_size=10) != other
    assert hash(JsonSerializer(max_size=10)) == hash(JsonSerializer(max_size=10))
    assert repr(PickleSerializer(max_size=10)) == "PickleSerializer(max_size=10)"
    assert (JsonSerializer.name, PickleSerializer().name) == ("json", "pickle")
    with pytest.raises(ValueError, match="positive"):
        JsonSerializer(max_size=0)


# -- pickle --------------------------------------------------------------------------


def test_pickle_serializer_round_trips_what_json_refuses() -> None:
    value = {"point": Point(1, 2.0), "deque": collections.deque([1, 2])}
    with pytest.raises(SerializationError):
        SER.dumps(value)
    ser = PickleSerializer()
    assert ser.loads(ser.dumps(value)) == value


def test_pickle_errors_name_the_label() -> None:
    ser = PickleSerializer(max_size=50)
    with pytest.raises(SerializationError, match=r"argument 'lock' of step 's' \(_thread\.lock\)"):
        ser.dumps(threading.Lock(), label="argument 'lock' of step 's'")
    with pytest.raises(PayloadTooLarge, match=r"PickleSerializer\(max_size=\.\.\.\)"):
        ser.dumps("x" * 100)
    with pytest.raises(SerializationError, match="can't be loaded"):
        ser.loads(b"not a pickle")


# -- errors --------------------------------------------------------------------------


def test_builtin_error_round_trips_with_traceback_and_notes() -> None:
    exc = raise_and_catch(ValueError("bad id", 42))
    exc.add_note("while loading order 7")
    data = encode_error(exc)
    assert data["type"] == "builtins:ValueError"
    assert "raise_and_catch" in data["traceback"] and "ValueError" in data["traceback"]
    got = decode_error(orjson.loads(orjson.dumps(data)))  # the dict is JSON-ready
    assert type(got) is ValueError and got.args == ("bad id", 42)
    assert got.__notes__ == ["while loading order 7"]


def test_custom_error_with_args_round_trips_through_json_serializer() -> None:
    got = roundtrip({"error": QuotaExceeded("ada", 3)})["error"]
    assert type(got) is QuotaExceeded
    assert (got.user, got.limit, str(got)) == ("ada", 3, "ada is over the quota of 3")


def test_error_needing_kwargs_comes_back_as_its_type() -> None:
    # NeedsKwargs(*args) fails; it is built without __init__, from its recorded args
    got = decode_error(encode_error(raise_and_catch(NeedsKwargs(code=3))))
    assert type(got) is NeedsKwargs
    assert got.args == ("failed with code 3",) and str(got) == "failed with code 3"


def test_error_rebuilt_with_a_different_message_is_built_from_its_args() -> None:
    got = roundtrip(Reworded(3))  # Reworded("failed with code 3") would say "... code failed ..."
    assert type(got) is Reworded
    assert str(got) == "failed with code 3"


def test_error_of_a_local_class_becomes_step_failed() -> None:
    class LocalError(Exception):
        pass

    got = roundtrip(raise_and_catch(LocalError("gone")))
    assert isinstance(got, StepFailed)
    assert got.type_name == f"{__name__}.{LocalError.__qualname__}"
    assert got.type_name.endswith(".<locals>.LocalError")
    assert got.message == "gone" and "LocalError: gone" in got.traceback


def test_error_with_unserializable_args_comes_back_with_its_message() -> None:
    exc = RuntimeError(threading.Lock())
    data = encode_error(exc)
    assert "args" not in data
    got = decode_error(data)
    assert type(got) is RuntimeError and str(got) == str(exc)


def test_step_failed_is_recorded_as_the_error_it_stands_for() -> None:
    first = StepFailed("shop.errors.OutOfStock", "no widgets", "Traceback ...")
    got = decode_error(encode_error(first))
    assert isinstance(got, StepFailed)
    assert (got.type_name, got.message, got.traceback) == (
        "shop.errors.OutOfStock",
        "no widgets",
        "Traceback ...",
    )


def test_oserror_with_filename_round_trips() -> None:
    exc = raise_and_catch(FileNotFoundError(2, "No such file or directory", "/x.txt"))
    got = roundtrip(exc)
    assert type(got) is FileNotFoundError
    assert (got.errno, got.filename, str(got)) == (2, "/x.txt", str(exc))


def test_exception_group_round_trips_with_nested_errors() -> None:
    group = ExceptionGroup("two failed", [ValueError("a"), QuotaExceeded("bo", 1)])
    got = roundtrip(raise_and_catch(group))
    assert type(got) is ExceptionGroup and str(got) == str(group)
    assert [type(e) for e in got.exceptions] == [ValueError, QuotaExceeded]
    assert str(got.exceptions[1]) == "bo is over the quota of 1"


def test_decode_error_falls_back_for_non_exception_or_missing_type() -> None:
    not_an_error = decode_error({"type": f"{__name__}:Point", "message": "m", "args": [1, 2]})
    assert isinstance(not_an_error, StepFailed) and not_an_error.type_name == f"{__name__}.Point"
    empty = decode_error({})
    assert isinstance(empty, StepFailed)

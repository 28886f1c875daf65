"""How legato turns step arguments, results and errors into bytes and back.

:class:`JsonSerializer` is the default: plain JSON values are handed straight
to orjson, and a small set of extended types (tuples, sets, bytes, datetimes,
UUID, Decimal, big ints, enums, dataclasses, pydantic models, exceptions, dicts
with non-str keys) is written in a tagged form ``{"$legato": "<kind>", ...}``
so that ``loads(dumps(v)) == v`` with the same types. :class:`PickleSerializer`
is the opt-in for everything else. Recorded errors go through
:func:`encode_error` / :func:`decode_error`.

Classes are stored as ``"module:qualname"`` and re-imported when a value is
loaded; a class defined in ``__main__`` only loads in a process whose main
module defines it too (the same script), and a class defined inside a function
can't be stored at all. Subclasses of str, int, float, list, dict and the other
builtin types above are stored as that builtin type.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import importlib
import math
import pickle
import sys
import traceback
import uuid
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, Protocol, final
from zoneinfo import ZoneInfo

import orjson

from ._errors import PayloadTooLarge, SerializationError, StepFailed

__all__ = [
    "JsonSerializer",
    "PickleSerializer",
    "Serializer",
    "decode_error",
    "default_serializer",
    "encode_error",
]

TAG = "$legato"
_TAG_BYTES = b'"$legato"'  # if absent from a payload, it holds plain JSON only
_I64_MIN, _U64_MAX = -(2**63), 2**64 - 1  # the int range orjson reads and writes
_DEFAULT_MAX_SIZE = 2 * 1024 * 1024
_BUILTIN_BASES: tuple[type[Any], ...] = (
    str, int, float, list, dict, tuple, set, frozenset, bytes, bytearray
)
_ADVICE = (
    "return plain data (dict, list, str, int, float, bool, None), a dataclass or "
    "a pydantic model instead, or opt in to pickle with PickleSerializer()"
)


class Serializer(Protocol):
    """What a workflow needs to store values: ``dumps`` to bytes and ``loads`` back.

    Example::

        def store(ser: Serializer, value: object) -> bytes:
            return ser.dumps(value, label="result of step 'fetch'")
    """

    @property
    def name(self) -> str:
        """Short name recorded next to each payload, e.g. ``"json"``."""
        ...

    def dumps(self, value: Any, *, label: str = "value") -> bytes:
        """Serialize ``value``; ``label`` names it in error messages."""
        ...

    def loads(self, data: bytes) -> Any:
        """Rebuild a value from what :meth:`dumps` returned."""
        ...


class _Limited:
    """Shared settings of the serializers: a payload size limit, compared by value."""

    __slots__ = ("_max_size",)
    name: ClassVar[str]

    def __init__(self, *, max_size: int = _DEFAULT_MAX_SIZE) -> None:
        if max_size <= 0:
            raise ValueError(f"max_size must be a positive number of bytes, got {max_size!r}")
        self._max_size = max_size

    @property
    def max_size(self) -> int:
        """Largest payload in bytes that :meth:`dumps` returns."""
        return self._max_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_size={self._max_size})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._max_size == other._max_size

    def __hash__(self) -> int:
        return hash((type(self), self._max_size))

    def _checked(self, data: bytes, label: str) -> bytes:
        if len(data) > self._max_size:
            raise PayloadTooLarge(
                f"{label} is {len(data):,} bytes serialized, over the limit of "
                f"{self._max_size:,} bytes; pass large data by reference (a path, URL or "
                f"object-store key) or raise the limit with "
                f"{type(self).__name__}(max_size=...)"
            )
        return data


@final
class JsonSerializer(_Limited):
    """The default serializer: JSON via orjson, extended to common Python types.

    Example::

        ser = JsonSerializer(max_size=10 * 1024 * 1024)
        data = ser.dumps({"when": datetime.now(UTC), "ids": (1, 2)}, label="result")
        assert ser.loads(data)["ids"] == (1, 2)

    Raises:
        SerializationError: from ``dumps`` for a value it can't store, naming
            the label, the path inside the value and the type.
        PayloadTooLarge: from ``dumps`` when the result is over ``max_size``.
    """

    __slots__ = ()
    name = "json"

    def dumps(self, value: Any, *, label: str = "value") -> bytes:
        """Serialize ``value`` to JSON bytes; see the class docstring."""
        try:
            # Plain data skips the tagging walk (which copies) and goes straight to orjson.
            data = orjson.dumps(value if _is_plain(value) else _enc(value))
        except _Reject as reject:
            raise SerializationError(reject.message(label)) from None
        except RecursionError:
            raise SerializationError(
                f"{label} is nested too deeply or contains a reference cycle; {_ADVICE}"
            ) from None
        except orjson.JSONEncodeError as exc:
            raise SerializationError(f"{label} can't be serialized as JSON: {exc}") from exc
        return self._checked(data, label)

    def loads(self, data: bytes) -> Any:
        """Rebuild a value from :meth:`dumps` output, re-importing stored classes."""
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"stored data is not valid JSON: {exc}") from exc
        if _TAG_BYTES not in data:  # plain JSON: nothing to resolve
            return value
        try:
            return _dec(value)
        except SerializationError:
            raise
        except (KeyError, TypeError, ValueError) as exc:  # includes pydantic's ValidationError
            raise SerializationError(
                f"stored data can't be decoded ({exc!r}); was it written with different "
                "versions of the classes it names?"
            ) from exc


@final
class PickleSerializer(_Limited):
    """Opt-in serializer for values JSON can't hold; anything picklable works.

    Pickle payloads load only where the same classes import, and loading
    untrusted pickle data runs arbitrary code: use it for your own store only.

    Example::

        rt = Runtime(store, serializer=PickleSerializer())
    """

    __slots__ = ()
    name = "pickle"

    def dumps(self, value: Any, *, label: str = "value") -> bytes:
        """Pickle ``value``; failures raise :class:`SerializationError` naming ``label``."""
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
            raise SerializationError(
                f"{label} ({_type_name(type(value))}) can't be pickled: {exc}; "
                "return plain data or make the object picklable (define it at module level)"
            ) from exc
        return self._checked(data, label)

    def loads(self, data: bytes) -> Any:
        """Unpickle ``data``; classes it refers to must import in this process."""
        try:
            return pickle.loads(data)
        except (pickle.UnpicklingError, AttributeError, ImportError, EOFError) as exc:
            raise SerializationError(f"stored pickle data can't be loaded: {exc}") from exc


def default_serializer() -> JsonSerializer:
    """The serializer used when none is given: ``JsonSerializer()``.

    Example::

        assert default_serializer() == JsonSerializer()
    """
    return JsonSerializer()


# -- errors --------------------------------------------------------------------------


def encode_error(exc: BaseException) -> dict[str, Any]:
    """Describe an exception as JSON-ready data that :func:`decode_error` turns back.

    Keeps the type (``"module:qualname"``), ``str(exc)``, ``exc.args`` when the
    JSON serializer can hold them, the formatted traceback and ``__notes__``.

    Example::

        data = encode_error(ValueError("bad id"))
        assert data["type"] == "builtins:ValueError"
    """
    if isinstance(exc, StepFailed):
        # Already a stand-in: keep describing the original, so re-recording is lossless.
        data: dict[str, Any] = {"type": exc.type_name, "message": exc.message}
        data["traceback"] = exc.traceback
    else:
        cls = type(exc)
        data = {"type": f"{cls.__module__}:{cls.__qualname__}", "message": _safe_str(exc)}
        data["traceback"] = "".join(traceback.format_exception(exc))
        # Without args, decode_error falls back to StepFailed, which is the right outcome.
        with contextlib.suppress(_Reject, RecursionError):
            data["args"] = [_enc(arg) for arg in exc.args]
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        data["notes"] = [str(note) for note in notes]
    return data


def decode_error(data: dict[str, Any]) -> BaseException:
    """Rebuild an exception from :func:`encode_error` data.

    Returns the original type when it imports, ``cls(*args)`` works and its
    ``str()`` matches the recorded message; otherwise a :class:`StepFailed`
    carrying the type name, message and recorded traceback.

    Example::

        exc = decode_error(encode_error(KeyError("k")))
        assert isinstance(exc, KeyError)
    """
    ref, message = str(data.get("type", "")), str(data.get("message", ""))
    exc = _rebuild_error(ref, message, data.get("args"))
    if exc is None:
        exc = StepFailed(_display_ref(ref), message, str(data.get("traceback", "")))
    notes = data.get("notes")
    if isinstance(notes, list) and notes:
        exc.__notes__ = [str(note) for note in notes]
    return exc


def _rebuild_error(ref: str, message: str, args: Any) -> BaseException | None:
    if not isinstance(args, list):
        return None
    try:
        cls = _import(ref)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            return None
        exc = cls(*_dec(args))
    except Exception:  # any failure to rebuild means "use the stand-in"
        return None
    return exc if _safe_str(exc) == message else None


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not stop the error from being recorded
        return f"<unprintable {type(exc).__name__}>"


# -- encoding ------------------------------------------------------------------------


class _Reject(Exception):
    """Internal: a value can't be encoded; the path is collected while unwinding."""

    def __init__(self, value: Any, reason: str = "") -> None:
        self.type_name = _type_name(type(value))
        self.reason = reason or f"{self.type_name} can't be serialized as JSON"
        self.path: list[str] = []  # innermost segment first

    def message(self, label: str) -> str:
        path = "value" + "".join(reversed(self.path))
        return f"{label} → at {path}: {self.reason}; {_ADVICE}"


def _is_plain(v: Any) -> bool:
    """True when orjson alone writes ``v`` in a form that loads back as equal."""
    t = type(v)
    if t is str or t is bool or v is None:
        return True
    if t is int:
        return _I64_MIN <= v <= _U64_MAX  # type: ignore[no-any-return]
    if t is float:
        return math.isfinite(v)  # orjson would write NaN and infinities as null
    # Explicit loops, not all(...): this is the hot path and generators cost ~2x here.
    if t is dict:
        for k, x in v.items():  # noqa: SIM110
            if type(k) is not str or k == TAG or not _is_plain(x):
                return False
        return True
    if t is list:
        for x in v:  # noqa: SIM110
            if not _is_plain(x):
                return False
        return True
    return False


def _enc(v: Any) -> Any:
    """Return a JSON-ready copy of ``v`` with extended types in tagged form."""
    if _is_plain(v):
        return v
    encode = _BY_TYPE.get(type(v))
    return encode(v) if encode is not None else _enc_other(v)


def _enc_other(v: Any) -> Any:
    """Encode by kind (isinstance) what the exact-type table doesn't cover."""
    if isinstance(v, Enum):  # before int/str: IntEnum and StrEnum members are both
        return {TAG: "enum", "cls": _class_ref(v), "v": _at(v.value, ".value", None)}
    if isinstance(v, BaseException):
        return {TAG: "error", "v": encode_error(v)}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        fields = [(f.name, getattr(v, f.name)) for f in dataclasses.fields(v) if hasattr(v, f.name)]
        return {TAG: "dataclass", "cls": _class_ref(v), "v": _enc_fields(fields)}
    if isinstance(v, tuple) and hasattr(v, "_fields"):  # a namedtuple
        fields = list(zip(v._fields, v, strict=True))
        return {TAG: "namedtuple", "cls": _class_ref(v), "v": _enc_fields(fields)}
    if hasattr(type(v), "model_validate") and hasattr(v, "model_dump"):  # pydantic v2, duck-typed
        return _enc_pydantic(v)
    # Subclasses of builtin types (OrderedDict, a str subclass, ...) are stored as the builtin.
    for base in _BUILTIN_BASES:
        if isinstance(v, base):
            return _enc(base(v))
    for base, encode in _BY_TYPE.items():
        if isinstance(v, base):
            return encode(v)
    raise _Reject(v)


def _at(x: Any, segment: str, key: object) -> Any:
    """``_enc(x)``; on failure, add ``segment.format(key)`` to the path (built only then)."""
    try:
        return _enc(x)
    except _Reject as reject:
        reject.path.append(segment.format(key))
        raise


def _enc_seq(items: Any) -> list[Any]:
    return [_at(x, "[{}]", i) for i, x in enumerate(items)]


def _enc_set(kind: str, v: Any) -> dict[str, Any]:
    items = [_at(x, "{{…}}", None) for x in v]
    # Set order changes between processes (str hashing is salted); sort for stable bytes.
    return {TAG: kind, "v": sorted(items, key=orjson.dumps)}


def _enc_dict(v: dict[Any, Any]) -> Any:
    if all(type(k) is str and k != TAG for k in v):
        return {k: _at(x, "[{!r}]", k) for k, x in v.items()}
    # Non-str keys, or a key equal to TAG (which must not read as a tag), go as pairs.
    pairs = [[_at(k, "<key #{}>", i), _at(x, "[{!r}]", k)] for i, (k, x) in enumerate(v.items())]
    return {TAG: "dict", "v": pairs}


def _enc_fields(pairs: Any) -> dict[str, Any]:
    return {name: _at(x, ".{}", name) for name, x in pairs}


def _class_ref(v: Any) -> str:
    """``"module:qualname"`` of ``type(v)``, checked to import back to the same class."""
    cls = type(v)
    mod, qual = cls.__module__, cls.__qualname__
    if "<locals>" in qual:
        raise _Reject(v, f"{_type_name(cls)} is defined inside a function, so it can't be "
                         "imported to load the value; move the class to module level")
    try:
        found: Any = sys.modules[mod]
        for part in qual.split("."):
            found = getattr(found, part)
    except (KeyError, AttributeError):
        found = None
    if found is not cls:
        raise _Reject(v, f"{_type_name(cls)} can't be found by its name {mod}.{qual}, so it "
                         "can't be imported to load the value; define it at module level")
    return f"{mod}:{qual}"


def _enc_datetime(v: dt.datetime) -> dict[str, Any]:
    out: dict[str, Any] = {TAG: "datetime", "v": v.isoformat()}
    if isinstance(v.tzinfo, ZoneInfo) and v.tzinfo.key:
        out["tz"] = v.tzinfo.key  # isoformat keeps only the offset; keep the zone too
    if v.fold:
        out["fold"] = 1
    return out


def _enc_pydantic(v: Any) -> dict[str, Any]:
    computed = set(getattr(type(v), "model_computed_fields", ()))
    fields = v.model_dump(mode="python", by_alias=True, round_trip=True, exclude=computed)
    return {TAG: "pydantic", "cls": _class_ref(v), "v": _enc_fields(fields.items())}


def _tagged(kind: str, fn: Callable[[Any], Any]) -> Callable[[Any], dict[str, Any]]:
    return lambda v: {TAG: kind, "v": fn(v)}


def _b64(v: bytes | bytearray) -> str:
    return base64.b64encode(v).decode("ascii")


# Exact-type table: the fast lookup for builtin extended types.
_BY_TYPE: dict[type, Callable[[Any], Any]] = {
    dict: _enc_dict,
    list: _enc_seq,
    int: _tagged("int", hex),  # hex has no digit limit, unlike str(int)
    float: _tagged("float", repr),
    tuple: _tagged("tuple", _enc_seq),
    set: lambda v: _enc_set("set", v),
    frozenset: lambda v: _enc_set("frozenset", v),
    bytes: _tagged("bytes", _b64),
    bytearray: _tagged("bytearray", _b64),
    dt.datetime: _enc_datetime,
    dt.date: _tagged("date", dt.date.isoformat),
    dt.time: _tagged("time", dt.time.isoformat),
    dt.timedelta: _tagged("timedelta", lambda v: [v.days, v.seconds, v.microseconds]),
    uuid.UUID: _tagged("uuid", str),
    Decimal: _tagged("decimal", str),
}


# -- decoding ------------------------------------------------------------------------


def _dec(x: Any) -> Any:
    """Rebuild a value from its JSON-ready form, resolving tags."""
    t = type(x)
    if t is list:
        return [_dec(i) for i in x]
    if t is dict:
        kind = x.get(TAG)
        if kind is None:
            return {k: _dec(v) for k, v in x.items()}
        decode = _DECODERS.get(kind)
        if decode is None:
            raise SerializationError(
                f"stored data has an unknown tag {kind!r}; was it written by a newer legato?"
            )
        return decode(x)
    return x


def _import(ref: str) -> Any:
    """Resolve ``"module:qualname"`` by importing the module; never calls the result."""
    mod, sep, qual = ref.partition(":")
    if not sep or not mod or not qual:
        raise ValueError(f"{ref!r} is not a 'module:qualname' reference")
    found: Any = importlib.import_module(mod)
    for part in qual.split("."):
        found = getattr(found, part)
    return found


def _load_class(node: dict[str, Any], kind: str, check: Callable[[type], bool]) -> Any:
    """Import the class a tagged node names and check it is the kind the tag promises."""
    ref = str(node.get("cls"))
    try:
        cls = _import(ref)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SerializationError(
            f"stored value refers to {_display_ref(ref)}, which can't be imported here ({exc}); "
            "make sure this process can import its module (a class defined in __main__ "
            "loads only when the same script is the main module)"
        ) from exc
    if not (isinstance(cls, type) and check(cls)):
        raise SerializationError(
            f"stored value refers to {_display_ref(ref)} as {kind}, but that name is now "
            f"{cls!r}; keep the class under its name or migrate the stored data"
        )
    return cls


def _dec_dataclass(node: dict[str, Any]) -> Any:
    cls = _load_class(node, "a dataclass", dataclasses.is_dataclass)
    values = _dec(node["v"])
    # Build through __init__ (the class's own contract); restore init=False fields after.
    fields = dataclasses.fields(cls)
    init = {f.name: values.pop(f.name) for f in fields if f.init and f.name in values}
    obj = cls(**init)
    for name, value in values.items():
        object.__setattr__(obj, name, value)  # works for frozen and slotted dataclasses too
    return obj


def _dec_datetime(node: dict[str, Any]) -> dt.datetime:
    value = dt.datetime.fromisoformat(node["v"])
    if "tz" in node:  # the isoformat text is wall time in that zone
        value = value.replace(tzinfo=ZoneInfo(node["tz"]))
    return value.replace(fold=node.get("fold", 0))


def _is_pydantic_class(cls: type) -> bool:
    return hasattr(cls, "model_validate") and hasattr(cls, "model_dump")


def _is_namedtuple_class(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_fields")


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "dict": lambda n: {_dec(k): _dec(v) for k, v in n["v"]},
    "int": lambda n: int(n["v"], 16),
    "float": lambda n: float(n["v"]),
    "tuple": lambda n: tuple(_dec(n["v"])),
    "set": lambda n: set(_dec(n["v"])),
    "frozenset": lambda n: frozenset(_dec(n["v"])),
    "bytes": lambda n: base64.b64decode(n["v"]),
    "bytearray": lambda n: bytearray(base64.b64decode(n["v"])),
    "datetime": _dec_datetime,
    "date": lambda n: dt.date.fromisoformat(n["v"]),
    "time": lambda n: dt.time.fromisoformat(n["v"]),
    "timedelta": lambda n: dt.timedelta(*n["v"]),
    "uuid": lambda n: uuid.UUID(n["v"]),
    "decimal": lambda n: Decimal(n["v"]),
    "enum": lambda n: _load_class(n, "an Enum", lambda c: issubclass(c, Enum))(_dec(n["v"])),
    "dataclass": _dec_dataclass,
    "namedtuple": lambda n: _load_class(n, "a namedtuple", _is_namedtuple_class)(**_dec(n["v"])),
    "pydantic": lambda n: _load_class(n, "a pydantic model", _is_pydantic_class).model_validate(
        _dec(n["v"])
    ),
    "error": lambda n: decode_error(n["v"]),
}


def _type_name(cls: type) -> str:
    """``socket.socket`` style name for messages; builtins without the module."""
    mod, qual = cls.__module__, cls.__qualname__
    return qual if mod == "builtins" else f"{mod}.{qual}"


def _display_ref(ref: str) -> str:
    """``"module:qualname"`` as a dotted name for messages and :class:`StepFailed`."""
    return ref.removeprefix("builtins:").replace(":", ".")

"""Tagged JSON: Python values to JSON-ready data and back, errors included.

Plain JSON values pass through untouched; extended types become
``{"$legato": "<kind>", "v": ...}`` nodes (classes as ``"module:qualname"``),
so :class:`~legato.JsonSerializer` can round-trip them exactly. Exceptions
inside values are recorded errors (see ``_error_record``).

Loading never imports a module: a class is looked up in the modules this
process has already imported, and only used if it is the kind its tag says.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from ._errors import SerializationError

__all__ = ["ADVICE", "TAG", "TAG_BYTES", "resolve"]

TAG = "$legato"
TAG_BYTES = b'"$legato"'  # a payload without these bytes is plain JSON: no tag walk on load
_I64_MIN, _U64_MAX = -(2**63), 2**64 - 1  # the int range orjson reads and writes
_BASES: tuple[type[Any], ...] = (str, int, float, list, dict, tuple, set, frozenset, bytes)
ADVICE = (
    "return plain data (dict, list, str, int, float, bool, None), a dataclass or "
    "a pydantic model instead, or opt in to pickle with PickleSerializer()"
)


# -- encoding ------------------------------------------------------------------------


class _Reject(Exception):
    """A value can't be encoded; containers add their path segment while it unwinds."""

    def __init__(self, value: Any, reason: str = "") -> None:
        self.reason = reason or f"{_type_name(type(value))} can't be serialized as JSON"
        self.path: list[str] = []  # innermost segment first

    def message(self, label: str) -> str:
        return f"{label} → at value{''.join(reversed(self.path))}: {self.reason}; {ADVICE}"


def _is_plain(v: Any) -> bool:
    """True when orjson alone writes ``v`` in a form that loads back equal, same types."""
    t = type(v)
    if t is str:
        return True
    if t is dict:
        if TAG in v:
            return False
        for k in v:  # explicit loops, not all(genexpr), which is ~2x slower here
            if type(k) is not str:
                return False
        return _plain_items(v.values())
    return _plain_items(v) if t is list else _plain_items((v,))


def _plain_items(items: Any) -> bool:
    # The hot path of dumps: leaves are checked inline, since a call per leaf costs ~2x.
    for x in items:
        t = type(x)
        if t is str or t is bool or x is None:
            continue
        if t is int:
            if not _I64_MIN <= x <= _U64_MAX:
                return False
        elif t is float:
            if x - x != 0.0:  # inf or NaN, which orjson would write as null
                return False
        elif (t is not dict and t is not list) or not _is_plain(x):
            return False
    return True


def _enc(v: Any) -> Any:
    """A JSON-ready form of ``v``: ``v`` itself when plain, else a copy with tags."""
    if _is_plain(v):
        return v  # plain subtrees are shared, not copied
    encode = _BY_TYPE.get(type(v))
    if encode is not None:
        return encode(v)
    if isinstance(v, Enum):  # before the builtin bases: IntEnum members are ints too
        return {TAG: "enum", "cls": _class_ref(v), "v": _at(v.value, ".value", None)}
    if isinstance(v, BaseException):
        from ._error_record import encode_nested  # a cycle: it encodes the error's args here

        return {TAG: "error", "v": encode_nested(v)}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        fields = [(f.name, getattr(v, f.name)) for f in dataclasses.fields(v) if hasattr(v, f.name)]
        return {TAG: "dataclass", "cls": _class_ref(v), "v": _enc_fields(fields)}
    if isinstance(v, tuple) and hasattr(v, "_fields"):
        items = [_at(x, ".{}", name) for name, x in zip(v._fields, v, strict=True)]
        return {TAG: "namedtuple", "cls": _class_ref(v), "v": items}
    if hasattr(v, "model_dump") and hasattr(type(v), "model_validate"):  # pydantic v2
        computed = set(getattr(type(v), "model_computed_fields", ()))  # not accepted back
        dumped = v.model_dump(mode="python", by_alias=True, round_trip=True, exclude=computed)
        return {TAG: "pydantic", "cls": _class_ref(v), "v": _enc_fields(dumped.items())}
    for base in _BASES:
        if isinstance(v, base):
            return _enc(base(v))
    for base, encode in _BY_TYPE.items():  # subclasses of datetime, UUID, Decimal, ...
        if isinstance(v, base):
            return encode(v)
    raise _Reject(v)


def _at(x: Any, segment: str, key: object) -> Any:
    """``_enc(x)``; on failure add ``segment.format(key)`` to the path (formatted only then)."""
    try:
        return _enc(x)
    except _Reject as reject:
        reject.path.append(segment.format(key))
        raise


def _enc_seq(items: Any) -> list[Any]:
    return [_at(x, "[{}]", i) for i, x in enumerate(items)]


def _enc_set(kind: str) -> Callable[[Any], dict[str, Any]]:
    # Set order differs between processes (str hashes are salted): sort for stable bytes.
    return lambda v: {TAG: kind, "v": sorted((_at(x, "{{…}}", 0) for x in v), key=orjson.dumps)}


def _enc_dict(v: dict[Any, Any]) -> Any:
    if all(type(k) is str and k != TAG for k in v):
        return {k: _at(x, "[{!r}]", k) for k, x in v.items()}
    # Non-str keys, or a user key equal to TAG (which must not read as a tag): pairs.
    pairs = [[_at(k, "<key #{}>", i), _at(x, "[{!r}]", k)] for i, (k, x) in enumerate(v.items())]
    return {TAG: "dict", "v": pairs}


def _enc_fields(pairs: Any) -> dict[str, Any]:
    return {name: _at(x, ".{}", name) for name, x in pairs}


def _class_ref(v: Any) -> str:
    """``"module:qualname"`` of ``type(v)``, checked to lead back to the same class."""
    cls = type(v)
    mod, qual = cls.__module__, cls.__qualname__
    where = "is defined inside a function" if "<locals>" in qual else ""
    if not where:
        found: Any = sys.modules.get(mod)
        for part in qual.split("."):
            found = getattr(found, part, None)
        where = "" if found is cls else f"can't be found under its name {mod}.{qual}"
    if where:
        raise _Reject(
            v,
            f"{_type_name(cls)} {where}, so it can't be imported to load the "
            "value; define the class at module level",
        )
    return f"{mod}:{qual}"


def _enc_datetime(v: dt.datetime) -> dict[str, Any]:
    out: dict[str, Any] = {TAG: "datetime", "v": v.isoformat()}
    if isinstance(v.tzinfo, ZoneInfo) and v.tzinfo.key:
        out["tz"] = v.tzinfo.key  # isoformat keeps only the offset; keep the zone too
    if v.fold:
        out["fold"] = 1  # which of two repeated wall times (DST ends), not in isoformat
    return out


def _tagged(kind: str, fn: Callable[[Any], Any]) -> Callable[[Any], dict[str, Any]]:
    return lambda v: {TAG: kind, "v": fn(v)}


def _b64(v: bytes | bytearray) -> str:
    return base64.b64encode(v).decode("ascii")


# By exact type; the order matters for the subclass scan in _enc (datetime before date).
_BY_TYPE: dict[type, Callable[[Any], Any]] = {
    dict: _enc_dict,
    list: _enc_seq,
    int: _tagged("int", hex),  # hex, unlike str(), has no 4300-digit limit
    float: _tagged("float", repr),
    tuple: _tagged("tuple", _enc_seq),
    set: _enc_set("set"),
    frozenset: _enc_set("frozenset"),
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
    """Rebuild a value from its JSON form, resolving tags."""
    t = type(x)
    if t is list:
        return [_dec(i) for i in x]
    if t is not dict:
        return x
    kind = x.get(TAG)
    if kind is None:
        return {k: _dec(v) for k, v in x.items()}
    if kind not in _DECODERS:
        raise SerializationError(f"stored data has an unknown tag {kind!r}; upgrade legato")
    return _DECODERS[kind](x)


def resolve(ref: str) -> Any:
    """What ``"module:qualname"`` names, from a module this process has already imported.

    Never imports and never calls: a stored row naming a module must not make
    whoever loads it run that module. A worker has imported its workflows'
    modules, so their classes resolve; a client that hasn't gets a clear error.

    Example::

        assert resolve("builtins:ValueError") is ValueError

    Raises:
        LookupError: saying why ``ref`` names nothing here.
    """
    mod, _, qual = ref.partition(":")
    parts = qual.split(".")
    if not mod or not all(p.isidentifier() and not _is_dunder(p) for p in parts):
        raise LookupError(f"{ref!r} is not a 'module:qualname' reference")
    found: Any = sys.modules.get(mod)
    if found is None:
        raise LookupError(f"its module {mod!r} is not imported in this process")
    try:
        for part in parts:
            found = getattr(found, part)
    except Exception:  # incl. whatever a module's __getattr__ raises
        raise LookupError(f"module {mod!r} has no attribute {qual!r}") from None
    return found


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _load_class(node: dict[str, Any], kind: str, check: Callable[[type], bool]) -> Any:
    """The already-imported class a tagged node names, checked to be the kind the tag promises."""
    ref = str(node.get("cls"))
    try:
        cls = resolve(ref)
    except LookupError as exc:
        raise SerializationError(
            f"stored value names {_display_ref(ref)}, which can't be imported here ({exc}); "
            "legato never imports a module because stored data names it, so import the "
            "module that defines it before loading (for a class defined in __main__, run "
            "the same script)"
        ) from None
    if not (isinstance(cls, type) and check(cls)):
        raise SerializationError(
            f"stored value names {_display_ref(ref)} as {kind}, but that name is {cls!r}; "
            "the data was written by another version of the code, or crafted"
        )
    return cls


def _is_namedtuple(cls: type) -> bool:
    return issubclass(cls, tuple) and hasattr(cls, "_make") and hasattr(cls, "_fields")


def _is_pydantic(cls: type) -> bool:
    pydantic = sys.modules.get("pydantic")  # no pydantic imported, no pydantic models
    return pydantic is not None and issubclass(cls, pydantic.BaseModel)


def _dec_error(node: dict[str, Any]) -> BaseException:
    from ._error_record import decode_error  # a cycle: it decodes the error's args here

    return decode_error(node["v"])


def _dec_dataclass(node: dict[str, Any]) -> Any:
    cls = _load_class(node, "a dataclass", dataclasses.is_dataclass)
    values = _dec(node["v"])
    # Build through __init__ (the class's contract), then restore the init=False fields.
    fields = dataclasses.fields(cls)
    init = {f.name: values.pop(f.name) for f in fields if f.init and f.name in values}
    obj = cls(**init)
    for name, value in values.items():
        object.__setattr__(obj, name, value)  # also works on frozen and slotted classes
    return obj


def _dec_datetime(node: dict[str, Any]) -> dt.datetime:
    value = dt.datetime.fromisoformat(node["v"])
    if "tz" in node:  # the text is wall time in that zone
        value = value.replace(tzinfo=ZoneInfo(node["tz"]))
    return value.replace(fold=node.get("fold", 0))


def _kind(name: str, check: Callable[[type], bool], build: str) -> Callable[[Any], Any]:
    """Decoder for a class-bearing tag: ``cls.<build>(value)``, or ``cls(value)``."""

    def decode(node: dict[str, Any]) -> Any:
        cls, value = _load_class(node, name, check), _dec(node["v"])
        return getattr(cls, build)(value) if build else cls(value)

    return decode


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
    "enum": _kind("an Enum", lambda c: issubclass(c, Enum), ""),
    "namedtuple": _kind("a namedtuple", _is_namedtuple, "_make"),
    "pydantic": _kind("a pydantic model", _is_pydantic, "model_validate"),
    "dataclass": _dec_dataclass,
    "error": _dec_error,
}


def _type_name(cls: type) -> str:
    """``socket.socket`` style name for messages; builtins without the module."""
    mod, qual = cls.__module__, cls.__qualname__
    return qual if mod == "builtins" else f"{mod}.{qual}"


def _display_ref(ref: str) -> str:
    """``"module:qualname"`` as a dotted name for messages and :class:`StepFailed`."""
    return ref.removeprefix("builtins:").replace(":", ".")

"""How legato turns step arguments, results and errors into bytes and back.

:class:`JsonSerializer` (the default) hands plain JSON values straight to orjson
and writes extended types in a tagged form, ``{"$legato": "<kind>", "v": ...}``,
so ``loads(dumps(v)) == v`` with the same types. Classes are stored as
``"module:qualname"`` and looked up again on load among the modules the
process has already imported: loading never imports a module a payload names,
so a row in the store can't run code. A class defined inside a function can't
be stored, and one defined in ``__main__`` loads only in a process whose main
module is the same script. Subclasses of builtin types (``OrderedDict``, a
``str`` subclass, ...) are stored as the builtin type. Errors are recorded by
``_error_record``, and always fit the size limit. :class:`PickleSerializer`
is the opt-in for everything else, and is unsafe on data you don't trust.
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any, ClassVar, Protocol, final

import orjson

from ._error_record import ErrorRecord, decode_error, encode_error, fit_error
from ._errors import PayloadTooLarge, SerializationError
from ._tagged import TAG_BYTES, _dec, _enc, _Reject, _type_name

__all__ = [
    "JsonSerializer",
    "PickleSerializer",
    "Serializer",
    "decode_error",
    "default_serializer",
    "encode_error",
]


class Serializer(Protocol):
    """What the durable layer needs to store values: ``dumps`` to bytes, ``loads`` back.

    Example::

        def record(ser: Serializer, result: object) -> bytes:
            return ser.dumps(result, label="result of step 'fetch'")
    """

    @property
    def name(self) -> str:
        """Short name stored with each payload, e.g. ``"json"``."""

    def dumps(self, value: Any, *, label: str = "value") -> bytes:
        """Serialize ``value``; ``label`` names it in error messages."""

    def loads(self, data: bytes) -> Any:
        """Rebuild a value from what :meth:`dumps` returned."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Limited:
    """Settings shared by the serializers; compared and shown by value."""

    name: ClassVar[str]
    max_size: int = dataclasses.field(default=2 * 1024 * 1024, kw_only=True)

    def __post_init__(self) -> None:
        if self.max_size <= 0:
            raise ValueError(f"max_size must be a positive number of bytes, not {self.max_size}")

    def dumps(self, value: Any, *, label: str = "value") -> bytes:
        """Serialize ``value``; ``label`` names it in error messages.

        A recorded error (what ``encode_error`` returns) over ``max_size`` is
        cut down until it fits rather than refused: the history keeps it.
        """
        data = self._dump(value, label)
        if len(data) > self.max_size and isinstance(value, ErrorRecord):
            # A step's error is part of the history: store a shorter one rather than none
            data = fit_error(ErrorRecord(value), lambda r: self._dump(r, label), self.max_size)
        if len(data) > self.max_size:
            raise PayloadTooLarge(
                f"{label} is {len(data):,} bytes serialized, over the limit of "
                f"{self.max_size:,} bytes; pass large data by reference (a path, URL or "
                f"object-store key) or raise the limit with {type(self).__name__}(max_size=...)"
            )
        return data

    def _dump(self, value: Any, label: str) -> bytes:
        raise NotImplementedError


@final
class JsonSerializer(_Limited):
    """The default serializer: JSON via orjson, extended to common Python types.

    Round-trips plain JSON plus tuple, set, frozenset, bytes, bytearray, datetime
    (with its offset or zone), date, time, timedelta, UUID, Decimal, ints of any
    size, enum members, dataclasses, pydantic models, namedtuples, exceptions and
    dicts with non-str keys. Compare :class:`PickleSerializer`, which takes
    anything picklable but is opaque and Python-only.

    Example::

        ser = JsonSerializer(max_size=10 * 1024 * 1024)
        data = ser.dumps({"at": datetime.now(UTC), "ids": (1, 2)}, label="result")
        assert ser.loads(data)["ids"] == (1, 2)

    Args:
        max_size: largest payload in bytes (default 2 MiB).

    Raises:
        SerializationError: from ``dumps``, naming the label, the path inside the
            value and the type it can't store; from ``loads`` for data it can't rebuild.
        PayloadTooLarge: from ``dumps`` when the payload is over ``max_size``.
    """

    __slots__ = ()
    name = "json"

    def _dump(self, value: Any, label: str) -> bytes:
        try:
            data = orjson.dumps(_enc(value))
        except _Reject as reject:
            raise SerializationError(reject.message(label)) from None
        except RecursionError:
            raise SerializationError(f"{label} is nested too deeply or has a cycle") from None
        except orjson.JSONEncodeError as exc:  # e.g. a str with lone surrogates
            raise SerializationError(f"{label} can't be serialized as JSON: {exc}") from exc
        return data

    def loads(self, data: bytes) -> Any:
        """Rebuild a value from :meth:`dumps` output.

        The classes it names must be in modules this process has already
        imported; a missing one raises :class:`SerializationError` naming it.
        """
        try:
            value = orjson.loads(data)
            return _dec(value) if TAG_BYTES in data else value
        except SerializationError:
            raise
        except (KeyError, TypeError, ValueError) as exc:  # incl. JSON and pydantic errors
            raise SerializationError(
                f"stored data can't be decoded ({exc!r}); was it written by another version "
                "of legato or of the classes it names?"
            ) from exc


@final
class PickleSerializer(_Limited):
    """Opt-in serializer for values JSON can't hold: anything picklable.

    Payloads are Python-only and load only where the same classes import.
    **Unsafe on data you don't trust**: unpickling imports modules and calls
    whatever the payload names, so anyone who can write a row to the store can
    run code in every process that loads it (a worker replaying, a client
    listing failed workflows). :class:`JsonSerializer` never imports or calls
    what stored data names; use pickle only with a store that only your own
    code writes to.

    Example::

        rt = Runtime(store, serializer=PickleSerializer())

    Args:
        max_size: largest payload in bytes (default 2 MiB).
    """

    __slots__ = ()
    name = "pickle"

    def _dump(self, value: Any, label: str) -> bytes:
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
            raise SerializationError(
                f"{label} ({_type_name(type(value))}) can't be pickled: {exc}; return plain "
                "data, or make the object picklable (module-level classes, no open resources)"
            ) from exc
        return data

    def loads(self, data: bytes) -> Any:
        """Unpickle ``data``; the classes it refers to must import in this process."""
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

"""Recorded errors: any exception as bounded, secret-free JSON data, and back.

A step's error is part of its workflow's history. On replay the workflow must
see the same type again, or its ``except`` clauses take another path, so the
record keeps what rebuilds the error as well as what explains it:

* ``type``: ``"module:qualname"``;
* ``message``: ``str(exc)``; ``traceback``: the formatted traceback;
  ``notes``: ``__notes__`` (each with lone surrogates escaped and secrets
  masked, see ``_redact``);
* ``args``: the constructor arguments, when :class:`~legato.JsonSerializer`
  can hold them (with the same masking); ``state``: the instance attributes
  it can hold.

Recording never fails: whatever the exception does (a ``__str__`` that raises,
attributes no serializer takes, a 100 MB message), a smaller record is kept,
cut down until it fits the serializer's size limit. Rebuilding looks the type
up only in modules already imported (``_tagged.resolve``): a crafted row
can't make a process import and run a module.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import orjson

from ._errors import StepFailed
from ._redact import MASK, is_secret_name, redact
from ._tagged import _dec, _display_ref, _enc, _Reject, _type_name, resolve

__all__ = ["ERROR_MAX_SIZE", "ErrorRecord", "decode_error", "encode_error", "fit_error"]

ERROR_MAX_SIZE = 64 * 1024  # bytes of JSON: room for a long message and traceback, no more
_NESTED_MAX_SIZE = 4 * 1024  # an error inside another one's args (an ExceptionGroup's)
_TRACEBACK_KEPT = 4 * 1024  # characters of traceback kept before args and state go

_DONE = object()

# Ids of the exceptions being encoded in this context: an error in its own args is a cycle.
_ENCODING: ContextVar[frozenset[int]] = ContextVar("legato_encoding_errors", default=frozenset())


class ErrorRecord(dict[str, Any]):
    """What :func:`encode_error` returns: JSON-ready, and known to serializers.

    A serializer that finds an ``ErrorRecord`` over its size limit shrinks it
    with :func:`fit_error` instead of failing, so an error is never lost.
    """

    __slots__ = ()


# -- encoding ------------------------------------------------------------------------


def encode_error(exc: BaseException, *, max_size: int = ERROR_MAX_SIZE) -> ErrorRecord:
    """Describe an exception as JSON-ready data that :func:`decode_error` turns back.

    Never raises. Keeps the type as ``"module:qualname"``, ``str(exc)``, the
    traceback and ``__notes__`` (secrets masked, lone surrogates escaped), the
    constructor arguments and attributes that :class:`~legato.JsonSerializer`
    can hold, all cut down to at most ``max_size`` bytes of JSON. A
    :class:`StepFailed` is described as the error it stands in for, so
    recording it again loses nothing.

    Example::

        data = encode_error(ValueError("bad id"))
        assert data["type"] == "builtins:ValueError" and data["message"] == "bad id"
    """
    token = _ENCODING.set(_ENCODING.get() | {id(exc)})
    try:
        record = _describe(exc)
    except Exception:  # a last resort; each part below already guards itself
        record = ErrorRecord(type=_type_ref(exc), message="", traceback="")
    finally:
        _ENCODING.reset(token)
    fit_error(record, orjson.dumps, max_size)
    return record


def encode_nested(exc: BaseException) -> ErrorRecord:
    """:func:`encode_error` for an error inside a value; refuses one inside itself."""
    if id(exc) in _ENCODING.get():
        raise _Reject(exc, f"{_type_name(type(exc))} contains itself")
    return encode_error(exc, max_size=_NESTED_MAX_SIZE)


def _describe(exc: BaseException) -> ErrorRecord:
    if isinstance(exc, StepFailed):
        record = ErrorRecord(
            type=_text(exc.type_name), message=_text(exc.message), traceback=_text(exc.traceback)
        )
    else:
        record = ErrorRecord(
            type=_type_ref(exc), message=_text(_safe_str(exc)), traceback=_text(_format(exc))
        )
        args = _encoded_args(exc)
        if args is not None:
            record["args"] = args
        state = _encoded_state(exc)
        if state:
            record["state"] = state
    notes = _notes(exc)
    if notes:
        record["notes"] = notes
    return record


def _type_ref(exc: BaseException) -> str:
    cls = type(exc)
    return _text(f"{cls.__module__}:{cls.__qualname__}")


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not stop the error from being recorded
        return f"<unprintable {type(exc).__name__}>"


def _format(exc: BaseException) -> str:
    try:
        return "".join(traceback.format_exception(exc))
    except Exception:
        return ""


def _text(value: object) -> str:
    """Text safe to store: secrets masked, lone surrogates (which JSON can't hold) escaped."""
    text = value if isinstance(value, str) else str(value)
    return redact(text).encode("utf-8", "backslashreplace").decode("utf-8")


def _encoded_args(exc: BaseException) -> list[Any] | None:
    try:
        args = exc.args
        if isinstance(exc, OSError) and exc.filename is not None:  # args omit the filename
            args = (exc.errno, exc.strerror, exc.filename, None, exc.filename2)
        return [_clean(_enc(arg)) for arg in args]
    except Exception:  # without args, decode_error rebuilds from the message
        return None


def _encoded_state(exc: BaseException) -> dict[str, Any]:
    """The instance attributes JSON can hold, each on its own: one bad one drops only itself."""
    try:
        items = list(vars(exc).items())
    except Exception:
        return {}
    state: dict[str, Any] = {}
    for name, value in items:
        if isinstance(name, str) and name != "__notes__":
            with contextlib.suppress(Exception):
                state[_text(name)] = _clean_item(name, _enc(value))
    return state


def _notes(exc: BaseException) -> list[str]:
    try:
        notes = getattr(exc, "__notes__", None)
        return [_text(note) for note in notes] if isinstance(notes, list | tuple) else []
    except Exception:
        return []


def _clean(data: Any) -> Any:
    """JSON-ready ``data`` with every string made safe by :func:`_text`."""
    if isinstance(data, str):
        return _text(data)
    if isinstance(data, list):
        return [_clean(x) for x in data]
    if isinstance(data, dict):
        return {_text(k): _clean_item(k, v) for k, v in data.items()}
    return data


def _clean_item(key: str, value: Any) -> Any:
    # {"password": "..."}, a dataclass field or an attribute named like a secret
    return MASK if isinstance(value, str) and is_secret_name(key) else _clean(value)


# -- fitting in a size limit ---------------------------------------------------------


def fit_error(record: ErrorRecord, dump: Callable[[Any], bytes], max_size: int) -> bytes:
    """``dump(record)``, shrinking ``record`` in place until that is at most ``max_size`` bytes.

    What goes first: the traceback beyond its last few KiB, the attributes,
    the arguments (the error is then rebuilt from its message), then notes,
    message and traceback are halved in turn. The type always stays. Returns
    the last bytes made; they are over ``max_size`` only if the type name alone is.
    An error ``dump`` raises on the smallest record is not caught.

    Example::

        record = encode_error(ValueError("x" * 10_000))
        assert len(fit_error(record, orjson.dumps, 1000)) <= 1000
    """
    data = _dumped(record, dump)
    shrinking = _shrinking(record)
    while data is None or len(data) > max_size:
        if next(shrinking, _DONE) is _DONE:
            break
        data = _dumped(record, dump)
    return data if data is not None else dump(record)


def _dumped(record: ErrorRecord, dump: Callable[[Any], bytes]) -> bytes | None:
    try:
        return dump(record)
    except Exception:  # e.g. a custom serializer that refuses something: keep shrinking
        return None


def _shrinking(record: ErrorRecord) -> Iterator[None]:
    """Make ``record`` smaller, one step per iteration."""
    yield from _halving(record, "traceback", _TRACEBACK_KEPT)
    for key in ("state", "args"):
        if record.pop(key, None) is not None:
            yield
    for key in ("notes", "message", "traceback"):
        yield from _halving(record, key, 0)
    record.pop("notes", None)
    yield


def _halving(record: ErrorRecord, key: str, floor: int) -> Iterator[None]:
    while True:
        value = record.get(key)
        texts = value if isinstance(value, list) else [value] if isinstance(value, str) else []
        if sum(len(t) for t in texts) <= floor:
            return
        halves = [_cut(t, len(t) // 2) for t in texts]
        record[key] = halves if isinstance(value, list) else halves[0]
        yield


def _cut(text: str, size: int) -> str:
    """``text`` in at most ``size`` characters: its head and tail around a marker."""
    if len(text) <= size:
        return text
    marker = f" … [{len(text):,} characters, cut to fit] … "
    room = size - len(marker)
    if room < 32:
        return text[:size]
    return text[: room - room // 2] + marker + text[len(text) - room // 2 :]


# -- decoding ------------------------------------------------------------------------


def decode_error(data: Any) -> BaseException:
    """Rebuild an exception from :func:`encode_error` data; never raises.

    Returns the original type when its module is already imported here (a
    worker has imported its workflows' modules), built from the recorded
    arguments with ``cls(*args)``, or else with ``cls.__new__`` and the
    recorded ``args`` and attributes, so ``except ThatType`` still matches on
    replay; the first whose ``str()`` is the recorded message wins. Otherwise
    (module not imported, or the name is not an exception class) a
    :class:`StepFailed` with the dotted type name, message and traceback.
    Notes are restored either way.

    Example::

        exc = decode_error(encode_error(KeyError("k")))
        assert isinstance(exc, KeyError) and exc.args == ("k",)
    """
    fields = data if isinstance(data, dict) else {}
    ref, message = str(fields.get("type", "")), str(fields.get("message", ""))
    exc = _rebuilt(ref, message, fields)
    if exc is None:
        exc = StepFailed(_display_ref(ref), message, str(fields.get("traceback", "")))
    notes = fields.get("notes")
    if isinstance(notes, list) and notes:
        with contextlib.suppress(Exception):
            exc.__notes__ = [str(note) for note in notes]
    return exc


def _rebuilt(ref: str, message: str, fields: dict[str, Any]) -> BaseException | None:
    try:
        cls = resolve(ref)
    except LookupError:
        return None
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        return None  # never call something that is not an exception class
    return _first_faithful(cls, message, fields)


def _first_faithful(
    cls: type[BaseException], message: str, fields: dict[str, Any]
) -> BaseException | None:
    args, state = _decoded_args(fields.get("args")), _decoded_state(fields.get("state"))
    makers: list[Callable[[], BaseException]] = []
    if args is not None:
        makers += [lambda: cls(*args), lambda: _blank(cls, args)]
    makers.append(lambda: _blank(cls, (message,)))
    fallback = None
    for make in makers:
        with contextlib.suppress(Exception):  # any failure just means "try the next way"
            exc = make()
            vars(exc).update(state)
            if _text(_safe_str(exc)) == message:  # "<unprintable X>" is faithful too
                return exc
            if fallback is None:
                str(exc)  # a stand-in whose str() raises where the original's didn't: no
                fallback = exc
    # Same type, other str(): its __str__ needs what couldn't be stored. The type is
    # what keeps the workflow's except clauses on the recorded path.
    return fallback


def _blank(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    """An instance of ``cls`` with ``args`` set, without running its ``__init__``."""
    exc = cls.__new__(cls, *args)
    exc.args = args
    return exc


def _decoded_args(value: Any) -> tuple[Any, ...] | None:
    if not isinstance(value, list):
        return None
    try:
        return tuple(_dec(value))
    except Exception:  # e.g. an argument whose class isn't imported here
        return None


def _decoded_state(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    state: dict[str, Any] = {}
    for name, item in value.items():
        if isinstance(name, str) and not name.startswith("__"):
            with contextlib.suppress(Exception):
                state[name] = _dec(item)
    return state

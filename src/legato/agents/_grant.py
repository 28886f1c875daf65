"""``legato.Grant``: what a tool may be called with, checked before any I/O.

Lumen's ``grant Chat model "gpt-4o" max_tokens 1024`` becomes
``Grant(model="gpt-4o", max_tokens=1024)``. A grant is a value; it becomes a
:class:`GrantPlan` when bound to a tool (``legato.use(tool, grant=...)`` or
``tool.with_grant(grant)``), and binding checks that every key means
something for that tool, so a typo fails at once instead of being ignored.

Keys, in the order they are looked at:

``timeout``
    seconds (or ``"5s"``) per attempt; enforced: the call is cancelled and
    fails with ``TimeoutError``.
``domain``
    a host, or a list of hosts, that URL arguments may point at;
    ``"*.example.com"`` matches ``example.com`` and every subdomain, ``"*"``
    any host. Every string argument that looks like a URL (has ``scheme://``
    or starts with ``//``), and every string passed to a parameter named
    ``url`` or ``*_url``, must have an allowed host. Lists, tuples and dict
    values are searched too, and so are the tool's own defaults (a default
    ``base_url`` can't slip past). A URL without a host is refused.
``budget``
    the number of calls allowed through this binding (per agent instance).
``max_<name>``
    a cap. If the tool has a parameter ``max_<name>`` itself (``llm.chat``'s
    ``max_tokens``), the grant's value is that parameter's default *and* its
    ceiling: callers may ask for less, not more (``None``, "no limit", is
    more). Otherwise it caps parameter ``<name>``: a caller passing a larger
    value is refused.
anything else
    the parameter of that name: its default for the call, and the only
    value a caller may pass explicitly.

A tool that takes ``**kwargs`` accepts any key as a parameter name.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, final
from urllib.parse import urlsplit

from .._duration import Duration, to_seconds
from .._errors import GrantViolation

if TYPE_CHECKING:
    from ._tool import Tool

__all__ = ["Grant", "GrantPlan", "host_allowed"]

_RESERVED: Final = frozenset({"timeout", "domain", "budget"})


@final
class Grant:
    """Constraints bound to a tool where it is used: defaults, caps, hosts, a timeout.

    Example::

        chat = legato.use("llm.chat", grant=legato.Grant(model="gpt-4o", max_tokens=1024))
        fetch = legato.use("http.get", grant=legato.Grant(domain="*.example.com",
                                                         timeout="5s", budget=100))

    Args (all keyword, all optional):
        timeout: seconds or a duration string; each attempt of the call is
            cancelled after it and fails with ``TimeoutError``.
        domain: a host pattern or a list of them (``"*.x.com"`` also matches
            ``x.com``); URL arguments must point at one.
        budget: how many calls the binding allows; the next one raises
            :class:`~legato.GrantViolation`.
        max_<name>: a cap on parameter ``<name>`` (or default and cap of a
            parameter called ``max_<name>``).
        <name>: the default of parameter ``<name>``, and the only value a
            caller may pass.

    A violation raises :class:`~legato.GrantViolation` naming the tool, the
    key and the offending value, before the tool runs. Grants compare equal
    when their constraints do.
    """

    __slots__ = ("_constraints", "budget", "domains", "timeout")

    def __init__(self, **constraints: Any) -> None:
        self._constraints = dict(constraints)
        timeout = constraints.get("timeout")
        self.timeout: float | None = None if timeout is None else _positive_seconds(timeout)
        self.domains: tuple[str, ...] | None = _domains(constraints.get("domain"))
        budget = constraints.get("budget")
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int) or budget < 0
        ):
            raise ValueError(
                f"Grant(budget=...) is a number of calls (an int >= 0), not {budget!r}")
        self.budget: int | None = budget

    @property
    def constraints(self) -> Mapping[str, Any]:
        """The keyword arguments the grant was made with (a read-only view)."""
        return MappingProxyType(self._constraints)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._constraints.items())
        return f"Grant({inner})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grant):
            return NotImplemented
        return self._constraints == other._constraints

    __hash__ = None  # type: ignore[assignment]  # values may be lists

    def plan(self, tool: Tool[..., Any]) -> GrantPlan:
        """Check the grant against ``tool``'s parameters; return the rules to apply per call.

        Raises ``TypeError`` naming the key when it means nothing for ``tool``
        (no such parameter), or when the tool's own default breaks a cap.

        Example::

            rules = legato.Grant(max_tokens=256).plan(chat_tool)
        """
        params = tool.signature.parameters
        open_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        names = [n for n, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        defaults: dict[str, Any] = {}
        caps: dict[str, tuple[str, Any]] = {}
        fixed: dict[str, Any] = {}
        for key, value in self._constraints.items():
            if key in _RESERVED:
                continue
            if key in params or (open_kwargs and not key.startswith("max_")):
                if key.startswith("max_"):  # the tool's own ceiling parameter: default + cap
                    defaults[key] = value
                    caps[key] = (key, value)
                else:
                    defaults[key] = value
                    fixed[key] = value
                continue
            target = key[4:] if key.startswith("max_") else None
            if target and (target in params or open_kwargs):
                caps[target] = (key, value)
                if target not in self._constraints:  # else the grant's default replaces it
                    _check_default(tool, key, target, value)
                continue
            wanted = f"parameter {target!r} or {key!r}" if target else f"parameter {key!r}"
            raise TypeError(
                f"{self!r} can't be bound to tool {tool.name!r}: {key}= needs a {wanted}, and "
                f"the tool's parameters are {names}. Fix the key, or drop it from the grant "
                "(reserved keys: timeout, domain, budget)."
            )
        return GrantPlan(self, tool.name, defaults, caps, fixed)


@final
@dataclass(frozen=True, slots=True)
class GrantPlan:
    """A grant checked against one tool: what to apply to each call's arguments."""

    grant: Grant
    tool: str
    defaults: dict[str, Any]
    caps: dict[str, tuple[str, Any]]  # parameter -> (grant key, limit)
    fixed: dict[str, Any]  # parameter -> the only value a caller may pass

    def apply(self, given: dict[str, Any], url_params: frozenset[str],
              tool_defaults: Mapping[str, Any]) -> dict[str, Any]:
        """The call's keyword arguments with the grant applied; raises GrantViolation.

        ``given`` holds what the caller passed, by parameter name;
        ``url_params`` the parameters whose strings are always URLs;
        ``tool_defaults`` the tool's own defaults (a default URL is checked too).
        """
        for name, value in self.fixed.items():
            if name in given and given[name] != value:
                raise GrantViolation(
                    self.tool, name, given[name], f"the grant fixes it to {value!r}")
        arguments = {**self.defaults, **given}
        for name, (key, limit) in self.caps.items():
            if name not in given:
                continue
            value = given[name]
            if value is None:
                raise GrantViolation(
                    self.tool, key, None, f"None means no limit; at most {limit!r}")
            try:
                over = value > limit
            except TypeError:
                raise GrantViolation(
                    self.tool, key, value, f"not comparable with the cap {limit!r}"
                ) from None
            if over:
                raise GrantViolation(self.tool, key, value, f"at most {limit!r}")
        domains = self.grant.domains
        if domains is not None:
            for name, value in {**tool_defaults, **arguments}.items():
                for url in _urls(value, always=name in url_params):
                    host = _host(url)
                    if host is None or not host_allowed(host, domains):
                        allowed = domains[0] if len(domains) == 1 else list(domains)
                        raise GrantViolation(
                            self.tool, "domain", url, f"allowed hosts: {allowed!r}")
        return arguments


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``host`` matches one of ``patterns``; ``*.x.com`` also matches ``x.com``.

    >>> host_allowed("api.example.com", ("*.example.com",))
    True
    >>> host_allowed("example.com", ("*.example.com",))
    True
    >>> host_allowed("evil-example.com", ("*.example.com",))
    False
    """
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern == "*":
            return True
        if pattern.startswith("*."):
            base = pattern[2:]
            if host == base or host.endswith("." + base):
                return True
        elif host == pattern:
            return True
    return False


def _urls(value: Any, *, always: bool) -> Iterator[str]:
    if isinstance(value, str):
        if always or "://" in value or value.startswith("//"):
            yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _urls(item, always=always)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _urls(item, always=always)


def _host(url: str) -> str | None:
    try:
        return urlsplit(url.strip()).hostname  # userinfo ("x.com@evil.com") is not the host
    except ValueError:
        return None


def _domains(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)) or not items or not all(
        isinstance(p, str) and p for p in items
    ):
        raise ValueError(
            f"Grant(domain=...) is a host pattern or a list of them, like '*.example.com', "
            f"not {value!r}"
        )
    return tuple(sorted(p.lower().rstrip(".") for p in items))


def _positive_seconds(value: Duration) -> float:
    seconds = to_seconds(value)
    if not seconds > 0:
        raise ValueError(f"Grant(timeout=...) must be more than 0 seconds, not {value!r}")
    return seconds


def _check_default(tool: Tool[..., Any], key: str, target: str, limit: Any) -> None:
    param = tool.signature.parameters.get(target)
    if param is None or param.default is inspect.Parameter.empty or param.default is None:
        return
    try:
        over = param.default > limit
    except TypeError:
        return
    if over:
        raise TypeError(
            f"Grant({key}={limit!r}) can't be bound to tool {tool.name!r}: the tool's default "
            f"{target}={param.default!r} is over the cap, so every call would be refused. "
            "Raise the cap, or pass a default under it in the grant too "
            f"(Grant({key}={limit!r}, {target}=...))."
        )

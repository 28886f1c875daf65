"""The public surface is legato/__init__.py: frozen here so changes are deliberate."""

from __future__ import annotations

import inspect

import legato

EXPECTED = sorted(legato.__all__)


def test_all_is_sorted_and_complete():
    assert legato.__all__ == EXPECTED
    # "@py_builtins" & co: pytest rewrites the asserts of a plugin's package (legato.testing)
    public = {n for n in dir(legato) if not n.startswith(("_", "@"))} - {
        "annotations", "agents", "cli", "compose", "durable", "flow", "otel", "resilience",
        "store", "testing", "ui"}
    assert public == set(legato.__all__)


def test_design_names_are_exported():
    for name in [
        "workflow", "step", "Runtime", "WorkflowHandle", "WorkflowInfo", "Status", "run",
        "VirtualClock", "now", "random", "uuid4", "patched", "workflow_id", "LegatoError",
        "NonDeterminismError", "SerializationError", "PayloadTooLarge", "WorkflowNotFound",
        "WorkflowConflict", "WorkflowCancelled", "StepFailed", "AllFailed", "ChannelClosed",
        "CircuitOpenError", "GraphError", "GrantViolation", "EffectViolation",
        "tool", "Grant", "cell", "Agent", "use",
        "Runnable", "runnable", "Chain", "Graph", "Memory", "Pool",
    ]:
        assert name in legato.__all__, name


def test_every_public_callable_has_a_docstring_with_an_example():
    for name in legato.__all__:
        obj = getattr(legato, name)
        if not callable(obj) or (inspect.isclass(obj) and issubclass(obj, BaseException)):
            continue
        doc = inspect.getdoc(obj) or ""
        assert doc, f"legato.{name} has no docstring"
        if inspect.isfunction(obj):
            assert ">>>" in doc or "::" in doc, f"legato.{name}'s docstring has no example"


def test_errors_form_one_tree():
    for name in legato.__all__:
        obj = getattr(legato, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            assert issubclass(obj, legato.LegatoError), name
    assert issubclass(legato.SerializationError, TypeError)
    assert issubclass(legato.WorkflowTimeout, TimeoutError)
    assert issubclass(legato.AllFailed, ExceptionGroup)

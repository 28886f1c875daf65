"""Every composition test ends with no warning about a coroutine never awaited,
an exception never retrieved, or a task destroyed while pending."""

from hygiene import hygiene

__all__ = ["hygiene"]

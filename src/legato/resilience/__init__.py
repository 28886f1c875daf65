"""Resilience policies: retries with backoff, and circuit breakers.

Both work on any async function; ``@legato.step(retry=..., circuit=...)``
applies them to durable steps, where the waits between attempts are durable.
This package depends only on the leaves (errors, durations), never on
``durable`` or ``flow``.
"""

from ._circuit_breaker import CircuitBreaker as CircuitBreaker
from ._circuit_breaker import CircuitState as CircuitState
from ._retry import Retry as Retry
from ._retry import retry as retry

__all__ = ["CircuitBreaker", "CircuitState", "Retry", "retry"]

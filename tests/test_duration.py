from __future__ import annotations

from datetime import timedelta

import pytest

from legato._duration import to_seconds


@pytest.mark.parametrize(
    ("given", "seconds"),
    [(2, 2.0), (0.5, 0.5), (timedelta(minutes=2), 120.0), ("1h30m", 5400.0), ("250ms", 0.25),
     ("7d", 604800.0), ("1w 2d", 777600.0), ("1.5s", 1.5)],
)
def test_durations(given, seconds):
    assert to_seconds(given) == seconds


@pytest.mark.parametrize("bad", ["", "soon", "5 minutes", "1h30", "h"])
def test_bad_strings_name_the_string(bad):
    with pytest.raises(ValueError, match="is not a duration"):
        to_seconds(bad)


def test_negative_and_wrong_types():
    with pytest.raises(ValueError, match="zero or more"):
        to_seconds(-1)
    with pytest.raises(TypeError):
        to_seconds(True)
    with pytest.raises(TypeError):
        to_seconds([1])  # type: ignore[arg-type]

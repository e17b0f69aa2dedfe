"""Checks of configuration values shared by every settings reader."""

from typing import Any


def is_int(value: Any) -> bool:
    """An integer, or a float with an integer value (JSON configs); not a bool."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())

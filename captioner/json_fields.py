"""Typed reading of a JSON document: each value checked for its type and range, by its path.

A manifest with `{"size": {"a": 1}}` or `"std": [0, 0, 0]` made the tool fail deep inside
(a TypeError, a division by zero) or caption with garbage. `Fields` reads one JSON object and
raises FieldError naming the exact place (`encoder.input.std[1]`) and what was expected, in
one line that never echoes the bad value itself (it may be huge or hold control characters).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

_MISSING = object()


class FieldError(ValueError):
    """A JSON value of the wrong type or out of range; str() is one line naming its path."""


def _kind(value: object) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "true/false",
             int: "an integer", float: "a number", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


class Fields:
    """One JSON object and where it sits in the document (for messages)."""

    def __init__(self, data: object, where: str = "") -> None:
        if not isinstance(data, dict):
            raise FieldError(f"{where or 'the document'} must be an object, not {_kind(data)}")
        self.data: dict[str, Any] = data
        self.where = where

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _get(self, key: str, default: object) -> object:
        value = self.data.get(key, default)
        if value is _MISSING:
            raise FieldError(f"{self._path(key)} is missing")
        return value

    def has(self, key: str) -> bool:
        return key in self.data

    def obj(self, key: str, default: object = _MISSING) -> Fields:
        return Fields(self._get(key, default), self._path(key))

    def items(self) -> Iterator[tuple[str, object]]:
        return iter(self.data.items())

    def text(self, key: str, default: object = _MISSING, max_len: int = 200) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise FieldError(f"{self._path(key)} must be a string, not {_kind(value)}")
        if len(value) > max_len or not value.isprintable():
            raise FieldError(f"{self._path(key)} must be a printable string of at most "
                             f"{max_len} characters")
        return value

    def integer(self, key: str, low: int, high: int, default: object = _MISSING) -> int:
        return check_integer(self._get(key, default), self._path(key), low, high)

    def number(self, key: str, low: float, high: float, default: object = _MISSING,
               positive: bool = False) -> float:
        return check_number(self._get(key, default), self._path(key), low, high, positive)

    def numbers(self, key: str, count: int, low: float, high: float, positive: bool = False
                ) -> tuple[float, ...]:
        values = self._list(key, count)
        return tuple(check_number(v, f"{self._path(key)}[{i}]", low, high, positive)
                     for i, v in enumerate(values))

    def integers(self, key: str, count: int, low: int, high: int) -> tuple[int, ...]:
        values = self._list(key, count)
        return tuple(check_integer(v, f"{self._path(key)}[{i}]", low, high)
                     for i, v in enumerate(values))

    def _list(self, key: str, count: int) -> list[object]:
        value = self._get(key, _MISSING)
        if not isinstance(value, list) or len(value) != count:
            raise FieldError(f"{self._path(key)} must be a list of {count} numbers")
        return value


def check_integer(value: object, path: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"{path} must be an integer, not {_kind(value)}")
    if not low <= value <= high:
        raise FieldError(f"{path} must be between {low} and {high}")
    return value


def check_number(value: object, path: str, low: float, high: float, positive: bool = False
                 ) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(f"{path} must be a number, not {_kind(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or not low <= number <= high or (positive and number <= 0):
        rule = f"a positive number up to {high:g}" if positive else f"between {low:g} and {high:g}"
        raise FieldError(f"{path} must be {rule}")
    return number

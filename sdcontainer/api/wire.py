"""Checked getters for untrusted JSON: a wrong type is a 400 naming the field."""

from __future__ import annotations

from typing import Any, TypeVar

from ..errors import InvalidArgument

T = TypeVar("T")


def get(obj: dict[str, Any], key: str, kind: type[T], default: T, where: str = "") -> T:
    """OBJ[KEY] if it has type KIND (None means DEFAULT), else InvalidArgument."""
    value = obj.get(key)
    if value is None:
        return default
    if kind is int and isinstance(value, bool):
        raise InvalidArgument(f"{where}{key} must be an integer, not {value!r}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return value  # type: ignore[return-value]
    if not isinstance(value, kind):
        raise InvalidArgument(f"{where}{key} must be {kind.__name__}, not {type(value).__name__}")
    return value


def get_obj(obj: dict[str, Any], key: str, where: str = "") -> dict[str, Any]:
    """A nested object (missing or null: empty)."""
    return get(obj, key, dict, {}, where)


def get_str_list(obj: dict[str, Any], key: str, where: str = "",
                 allow_string: bool = False) -> list[str] | None:
    """A list of strings; docker also accepts a single string for Cmd and Entrypoint."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str) and allow_string:
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{where}{key} must be a list of strings")
    return value


def get_str_map(obj: dict[str, Any], key: str, where: str = "") -> dict[str, str]:
    """An object of string values."""
    value = get_obj(obj, key, where)
    if not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"{where}{key} values must be strings")
    return value

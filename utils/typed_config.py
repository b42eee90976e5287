"""Typed hyperparameters built from Hydra config nodes.

Components declare their hyperparameters once as frozen dataclasses; `build` turns a config mapping into one,
checking unknown keys, types and `Literal` choices, so every user mistake becomes a one-line `ConfigError` that
names the full key before any work starts.
"""

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

from omegaconf import DictConfig, ListConfig, OmegaConf

T = TypeVar("T")


class ConfigError(ValueError):
    """A user-facing configuration mistake; `key` is the dotted config path that needs fixing."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)

    def under(self, prefix: str) -> "ConfigError":
        """The same error with its key qualified by a parent path (e.g. `algorithm`)."""
        return ConfigError(f"{prefix}.{self.key}" if self.key else prefix, self.message)


def require(condition: bool, key: str, message: str) -> None:
    """Raise a `ConfigError` for `key` unless `condition` holds."""
    if not condition:
        raise ConfigError(key, message)


def build(cls: type[T], values: Mapping[str, Any] | DictConfig, prefix: str) -> T:
    """Build dataclass `cls` from `values` (keys starting with `_` are metadata and ignored)."""
    if isinstance(values, DictConfig):
        values = OmegaConf.to_container(values, resolve=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(k for k in values if k not in fields and not k.startswith("_"))
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}", f"unknown key; valid keys are: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _convert(hints[name], values[name], f"{prefix}.{name}") for name in fields if name in values}
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise error.under(prefix) from None


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"expected a group of keys, got {value!r}")
        return build(hint, value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(key, f"got {value!r}; choose one of: {', '.join(map(str, args))}")
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], value, key)
        for alternative in inner:
            try:
                return _convert(alternative, value, key)
            except ConfigError:
                continue
        raise ConfigError(key, f"expected {' or '.join(map(_describe, args))}, got {value!r}")
    if origin in (tuple, list):
        if isinstance(value, ListConfig):
            value = list(value)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"expected a list like [1,2], got {value!r}")
        return tuple(_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"expected a string, got {value!r}")
        return value
    return value


def _describe(hint: Any) -> str:
    """How a type reads in an error message."""
    if typing.get_origin(hint) in (tuple, list):
        return "a list like [1,2]"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))

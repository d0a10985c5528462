"""Typed configs: dataclasses with named presets, loaded from YAML or TOML, overridable per key.

Every stage declares one dataclass whose fields are the paper's knobs under their paper names, and a
``PRESETS`` mapping (``tiny`` for tests, ``cpu`` for 2-core machines, ``paper`` for the published
settings). :func:`load_config` resolves preset → file → ``key=value`` overrides, in that order, and
rejects unknown keys so a typo in a config file never silently falls back to a default.

A knob that was renamed keeps working under its old name: a config dataclass lists its old names in a
``DEPRECATED_NAMES`` class attribute (old name -> new name and a conversion of the value), and
:func:`apply_mapping` translates them with a deprecation message. That is what lets a model trained before
the rename (its saved config.yaml) still load.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from vq_models.errors import InputError
from vq_models.io.atomic import atomic_write_text

log = logging.getLogger("vqedit.config")

T = TypeVar("T")

#: old option name -> (new name, conversion of an old value to the new option's meaning)
Renames = Mapping[str, tuple[str, Callable[[Any], Any]]]


def _translate_old_names(config: Any, mapping: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``mapping`` with the config's deprecated option names replaced by the current ones (with a message)."""
    renames: Renames = getattr(type(config), "DEPRECATED_NAMES", {})
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if key in renames:
            new, convert = renames[key]
            if new in mapping:
                raise InputError(f"{where}.{key}: given together with its new name {new!r}; keep only {new!r}")
            converted = convert(value)
            note = "" if converted == value else f" (read as {new} = {converted!r})"
            log.warning("%s.%s is deprecated: use %s%s", where, key, new, note)
            out[new] = converted
        else:
            out[key] = value
    return out


def _coerce(value: Any, current: Any, where: str) -> Any:
    """Coerce a parsed value to the type of the field's current value (so YAML ints fill float fields)."""
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise InputError(f"{where}: expected true/false, got {value!r}")
    if isinstance(current, int | float) and not isinstance(current, bool):
        try:
            return type(current)(value) if not (isinstance(current, int) and isinstance(value, float)) else value
        except (TypeError, ValueError):
            raise InputError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(current, tuple | list):
        if isinstance(value, str):
            value = yaml.safe_load(value)
        if not isinstance(value, list | tuple):
            raise InputError(f"{where}: expected a list, got {value!r}")
        return type(current)(value)
    if isinstance(current, str):
        return str(value)
    return value


def apply_mapping(config: T, mapping: Mapping[str, Any], where: str = "config") -> T:
    """Return a copy of ``config`` with ``mapping`` applied; unknown keys raise :class:`InputError`."""
    if not isinstance(mapping, Mapping):
        raise InputError(f"{where}: expected a mapping of option names to values")
    fields = {f.name: f for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    mapping = _translate_old_names(config, mapping, where)
    changes: dict[str, Any] = {}
    for key, value in mapping.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise InputError(f"{where}.{key}: unknown option (known: {known})")
        current = getattr(config, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            changes[key] = apply_mapping(current, value, f"{where}.{key}")
        else:
            changes[key] = _coerce(value, current, f"{where}.{key}")
    return dataclasses.replace(config, **changes)  # type: ignore[type-var]


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a YAML (.yaml/.yml) or TOML (.toml) file into a dict."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: config file not found")
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot parse config: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: top level must be a mapping")
    return data


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """Turn ``["lr=1e-4", "vq.num_codes=64"]`` into a nested dict (values parsed as YAML scalars)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InputError(f"override {pair!r}: expected KEY=VALUE")
        key, raw = pair.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def load_config(
    presets: Mapping[str, T],
    preset: str,
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> T:
    """Resolve a config: the named preset, then a YAML/TOML file, then ``KEY=VALUE`` overrides."""
    if preset not in presets:
        raise InputError(f"preset {preset!r}: unknown (choose from {', '.join(presets)})")
    config = presets[preset]
    if path is not None:
        config = apply_mapping(config, read_config_file(path), str(path))
    if overrides:
        config = apply_mapping(config, parse_overrides(overrides), "override")
    return config


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain dict (lists for tuples) suitable for YAML/JSON and for the model's metadata."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(config))


def save_config(config: Any, path: str | Path) -> None:
    """Write a config as YAML atomically."""
    atomic_write_text(Path(path), yaml.safe_dump(config_to_dict(config), sort_keys=False))

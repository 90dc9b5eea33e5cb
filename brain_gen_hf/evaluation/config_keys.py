"""Key checks shared by every evaluation config section: a mapping, reference aliases, no unknown keys."""

from __future__ import annotations

import dataclasses
from typing import Any


def reject_unknown(section: str, values: Any, allowed: set[str]) -> None:
    """`values` must be a mapping whose keys are all in `allowed`; the error names `section` and the bad keys."""
    if not isinstance(values, dict):
        raise ValueError(f"{section} must be a mapping, got {values!r}")  # noqa: TRY004 (config errors are ValueErrors)
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)} in {section}; expected some of {sorted(allowed)}")


def dataclass_values(cls: type, section: str, values: dict | None, aliases: dict[str, str] | None = None) -> dict:
    """The keyword arguments of dataclass `cls` from a config mapping: aliases renamed (an alias and its name given
    together is an error), then any key that is not a field of `cls` rejected."""
    values = dict(values or {})
    for alias, name in (aliases or {}).items():
        if alias in values:
            if name in values:
                raise ValueError(f"{section}: give {name!r} or its alias {alias!r}, not both")
            values[name] = values.pop(alias)
    reject_unknown(section, values, {field.name for field in dataclasses.fields(cls)})
    return values

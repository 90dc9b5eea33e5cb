"""Lazy package exports: names resolve to their submodule on first attribute access (PEP 562)."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, names: dict[str, str]):
    """`(__getattr__, __dir__)` for `package`, where `names` maps each public name to its module.

    Module paths are absolute or relative to `package` (a leading "." is optional for submodules).
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = module if module.startswith(package.split(".")[0] + ".") else f"{package}.{module.lstrip('.')}"
        value = getattr(importlib.import_module(target), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(list(namespace) + list(names))

    return __getattr__, __dir__

"""API keys of the emulator and the permissions each one holds."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

VIEW = "View IOC collections"
MANAGE = "Manage IOC collections"
ALL_PERMISSIONS = frozenset({VIEW, MANAGE})

# Short spellings accepted on the command line and in the admin API.
_ALIASES = {"view": VIEW, "manage": MANAGE, "all": None}


def parse_permissions(names: Iterable[str]) -> frozenset[str]:
    """Turn names or aliases (view, manage, all) into permission names."""
    result: set[str] = set()
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name.lower() in _ALIASES:
            alias = _ALIASES[name.lower()]
            result.update(ALL_PERMISSIONS if alias is None else {alias})
        elif name in ALL_PERMISSIONS:
            result.add(name)
        else:
            raise ValueError(f"unknown permission {name!r} (use view, manage or all)")
    return frozenset(result)


def normalise_keys(api_keys: Mapping[str, Any] | Iterable[str] | None) -> dict[str, frozenset[str]]:
    """Accept `{"key": {"permissions": [...]}}`, `{"key": [...]}` or a plain set of keys (all permissions)."""
    if api_keys is None:
        return {}
    if isinstance(api_keys, Mapping):
        result: dict[str, frozenset[str]] = {}
        for key, spec in api_keys.items():
            if isinstance(spec, Mapping):
                spec = spec.get("permissions", ["all"])
            result[key] = parse_permissions(["all"] if spec is None else spec)
        return result
    return {key: ALL_PERMISSIONS for key in api_keys}


class KeyRing:
    """Thread-safe key → permissions map."""

    def __init__(self, keys: dict[str, frozenset[str]]) -> None:
        self._lock = threading.Lock()
        self._keys = dict(keys)

    def set(self, key: str, permissions: frozenset[str]) -> None:
        """Add a key or replace its permissions."""
        with self._lock:
            self._keys[key] = permissions

    def remove(self, key: str) -> bool:
        """Forget a key; False if it was unknown."""
        with self._lock:
            return self._keys.pop(key, None) is not None

    def replace_all(self, keys: dict[str, frozenset[str]]) -> None:
        with self._lock:
            self._keys = dict(keys)

    def permissions(self, key: str) -> frozenset[str] | None:
        """Permissions of a key, None when the key is unknown."""
        with self._lock:
            return self._keys.get(key)

    def count(self) -> int:
        with self._lock:
            return len(self._keys)

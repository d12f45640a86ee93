"""A small RFC 6902 JSON-Patch generator, enough to fill `context.patch` / `context.reverse_patch`.

The platform computes these with fast-json-patch's `compare`; we produce the same kind of minimal
replace/add/remove operations (arrays are compared element by element, never moved).
"""

from __future__ import annotations

from typing import Any

JsonPatch = list[dict[str, Any]]


def _escape(token: str) -> str:
    # RFC 6901: "~" must be escaped before "/" so that "~1" is not double-escaped.
    return token.replace("~", "~0").replace("/", "~1")


def _diff(old: Any, new: Any, path: str, out: JsonPatch) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                out.append({"op": "remove", "path": f"{path}/{_escape(key)}"})
        for key, value in new.items():
            child = f"{path}/{_escape(key)}"
            if key not in old:
                out.append({"op": "add", "path": child, "value": value})
            else:
                _diff(old[key], value, child, out)
        return
    if isinstance(old, list) and isinstance(new, list):
        common = min(len(old), len(new))
        for index in range(common):
            _diff(old[index], new[index], f"{path}/{index}", out)
        # Remove from the end first so the indexes of the remaining removals stay valid.
        for index in range(len(old) - 1, common - 1, -1):
            out.append({"op": "remove", "path": f"{path}/{index}"})
        for index in range(common, len(new)):
            out.append({"op": "add", "path": f"{path}/{index}", "value": new[index]})
        return
    if old != new or type(old) is not type(new):
        out.append({"op": "replace", "path": path, "value": new})


def compute_patch(old: Any, new: Any) -> JsonPatch:
    """Return the operations that turn `old` into `new` (empty when they are equal)."""
    out: JsonPatch = []
    _diff(old, new, "", out)
    return out

"""Shared by the space tests: one key of a nested config replaced or deleted, to provoke one error."""

from __future__ import annotations


def edited(node: dict, path: tuple, value) -> dict:
    """`node`, changed in place at `path` to `value` (or with that key deleted if value is KeyError)."""
    target = node
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return node

"""Every distinct layer any child of a space can contain: the layers of the children that cover the space
(`supernet.space.coverage`), as `SearchSpace.layers` plans them, so the keys can never drift from it.
"""

from __future__ import annotations

from supernet.space import LayerSpec, SearchSpace
from supernet.space.coverage import covering_archs


def reachable_layers(space: SearchSpace) -> list[LayerSpec]:
    """All distinct layers of all children, in a stable order (by resolution, then plan order)."""
    found: dict[LayerSpec, None] = {}
    for arch in covering_archs(space):
        found.update(dict.fromkeys(space.layers(arch)))
    return list(found)

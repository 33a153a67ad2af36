"""Architectures as data: `Arch`, `SearchSpace` and the layer plan of a child."""

from supernet.space.arch import Arch, ArchError, BlockChoice, StageChoice
from supernet.space.layers import LayerSpec
from supernet.space.search_space import SearchSpace
from supernet.space.spec import SpaceError, SpaceSpec, make_divisible

__all__ = ["Arch", "ArchError", "BlockChoice", "LayerSpec", "SearchSpace", "SpaceError", "SpaceSpec",
           "StageChoice", "make_divisible"]

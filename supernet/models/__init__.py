"""The supernet, its elastic blocks and the plain-torch blocks of extracted children."""

from supernet.models.static import build_child, build_layer
from supernet.models.supernet import Supernet, active_state_dict

__all__ = ["Supernet", "active_state_dict", "build_child", "build_layer"]

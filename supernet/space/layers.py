"""The layer plan of a child: one `LayerSpec` per block, with the exact shapes it runs at.

This one list is what the analytic parameter/FLOP counts, the latency table keys and the static child
builder all read, so the three can never disagree about what a child is.

FLOPs here are multiply-accumulates of convolutions and linear layers (the figure NAS papers report as
"FLOPs"); batch norm, activations, pooling and additions are not counted.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields


def conv_out(size: int, stride: int) -> int:
    """Spatial size after a 'same'-padded convolution with an odd kernel."""
    return (size - 1) // stride + 1


@dataclass(frozen=True, slots=True)
class LayerSpec:
    """One block at concrete sizes.

    kind: "conv" (conv-BN-act), "mbconv" (inverted residual), or "classifier"
    (global pool, optional 1x1 feature mix with activation, dropout, linear).
    """

    kind: str
    resolution: int  # input height = width
    cin: int
    cmid: int  # mbconv: expanded channels; classifier: feature-mix width (0 = none)
    cout: int
    kernel: int = 1
    stride: int = 1
    se: int = 0  # squeeze-excite hidden width, 0 = no SE
    act: str = "relu"
    expand: bool = True  # mbconv: whether there is a 1x1 expansion conv
    residual: bool = False

    @property
    def out_resolution(self) -> int:
        return 1 if self.kind == "classifier" else conv_out(self.resolution, self.stride)

    def key(self) -> str:
        """A compact, stable text key (used by latency tables)."""
        return "|".join(f"{f.name}={v}" for f, v in zip(fields(self), astuple(self), strict=True))

    @classmethod
    def from_key(cls, key: str) -> LayerSpec:
        values = dict(item.split("=", 1) for item in key.split("|"))
        kwargs = {}
        for f in fields(cls):
            raw = values[f.name]
            kwargs[f.name] = raw == "True" if f.type == "bool" else int(raw) if f.type == "int" else raw
        return cls(**kwargs)

    def params(self) -> int:
        if self.kind == "conv":
            return self.cin * self.cout * self.kernel**2 + 2 * self.cout
        if self.kind == "classifier":
            mix = self.cin * self.cmid if self.cmid else 0
            width = self.cmid or self.cin
            return mix + width * self.cout + self.cout
        total = self.cmid * self.kernel**2 + 2 * self.cmid  # depthwise + BN
        if self.expand:
            total += self.cin * self.cmid + 2 * self.cmid
        if self.se:
            total += 2 * self.cmid * self.se + self.se + self.cmid  # two 1x1 convs with bias
        return total + self.cmid * self.cout + 2 * self.cout

    def flops(self) -> int:
        hw_in = self.resolution**2
        hw_out = self.out_resolution**2
        if self.kind == "conv":
            return hw_out * self.cin * self.cout * self.kernel**2
        if self.kind == "classifier":
            width = self.cmid or self.cin
            return (self.cin * self.cmid if self.cmid else 0) + width * self.cout
        total = hw_out * self.cmid * self.kernel**2 + hw_out * self.cmid * self.cout
        if self.expand:
            total += hw_in * self.cin * self.cmid
        if self.se:
            total += 2 * self.cmid * self.se
        return total

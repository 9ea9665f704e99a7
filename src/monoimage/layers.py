"""Layering policy (pure): which layers the golden image is cut into.

`single` is the textbook golden image: one squashed layer over nothing. `packages` (cut along
dpkg/rpm file ownership, most shared and least volatile first, like Nix's buildLayeredImage)
plugs in here: a planner from package ownership to layers; the build commits one layer per
planned layer in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import UserError
from .packagers.base import ResolvedPackage
from .recipe import Layering


@dataclass(frozen=True)
class Layer:
    """One layer: the files of these packages; `rest` adds every file no package owns."""

    name: str
    packages: tuple[str, ...]
    rest: bool = False


@dataclass(frozen=True)
class LayerPlan:
    policy: str
    layers: tuple[Layer, ...]

    @property
    def is_single(self) -> bool:
        return len(self.layers) == 1


def plan_layers(layering: Layering, packages: Sequence[ResolvedPackage]) -> LayerPlan:
    """The layers for a closure under the recipe's layering policy."""
    if layering.policy == "single":
        return LayerPlan("single", (Layer("rootfs", tuple(p.name for p in packages),
                                          rest=True),))
    raise UserError(f"layering.policy '{layering.policy}': not built yet; this version of "
                    f"monoimage builds 'single' (one squashed layer)")

"""Packager adapters (apt, dnf) behind one small interface: see base.py.

Importing this package registers every packager; `packager_for(family)` gives the one to use.
"""

from monoimage.tools.packagers import apt, dnf  # noqa: F401  (they register themselves)
from monoimage.tools.packagers.base import Packager, packager_for

__all__ = ["Packager", "packager_for"]

"""monoimage: one golden all-in-one container image for edge sites."""

__version__ = "0.1.0"

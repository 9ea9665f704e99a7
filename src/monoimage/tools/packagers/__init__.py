"""Packager adapters (apt, dnf) behind one small interface: see base.py."""

"""Magnesium safety CDS Hooks service."""

__version__ = "0.1.0"

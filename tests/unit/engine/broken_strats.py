"""A module that fails on import, for the loader's error message test."""

raise RuntimeError("boom at import")

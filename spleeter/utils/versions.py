"""Installed package versions, as written into model folders, exports and reports."""

import platform
from importlib.metadata import PackageNotFoundError, version

RECORDED_PACKAGES = ("spleeter", "tensorflow", "keras", "numpy")
"""The packages whose versions a model folder records (they decide its numbers)."""


def package_version(name: str, missing: str | None = None) -> str | None:
    """The installed version of package ``name``, or ``missing``."""
    try:
        return version(name)
    except PackageNotFoundError:
        return missing


def recorded_versions() -> dict[str, str | None]:
    """Python's and :data:`RECORDED_PACKAGES`' versions (None: not installed)."""
    return {"python": platform.python_version()} | {
        name: package_version(name) for name in RECORDED_PACKAGES
    }

"""Optional dependencies (setup.cfg's extras) and how to install them.

PyPI's ``spleeter`` is upstream Deezer Spleeter 2.4.2: ``pip install 'spleeter[gpu]'`` would
replace this fork with it. Every hint therefore installs from this project's source tree.
"""

from importlib.util import find_spec

from .. import SpleeterError

EXTRA_PACKAGES: dict[str, dict[str, str]] = {
    "evaluation": {
        "musdb": "musdb",
        "museval": "museval",
        "fast_bss_eval": "fast-bss-eval",
        "matplotlib": "matplotlib",
    },
    "onnx": {"onnxruntime": "onnxruntime"},
    "openvino": {"openvino": "openvino"},
    "gpu": {"onnxruntime": "onnxruntime-gpu"},
    "render": {"music21": "music21"},
    "dask": {"distributed": "dask[distributed]"},
    "ray": {"ray": "ray"},
    "listen": {"starlette": "starlette", "uvicorn": "uvicorn", "pyloudnorm": "pyloudnorm"},
}
"""Each extra's packages: ``{module imported: distribution name}``."""


def install_hint(extra: str) -> str:
    """The command that installs ``extra`` for this project (not PyPI's upstream Spleeter)."""
    return (
        f"""pip install ".[{extra}]" in this project's checkout (PyPI's "spleeter" is """
        "upstream 2.4.2 and would replace this fork)"
    )


def missing_modules(modules: list[str]) -> list[str]:
    """Which of ``modules`` cannot be imported (looked up, not imported)."""
    missing = []
    for module in modules:
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(module)
    return missing


def require_extra(extra: str, modules: list[str], purpose: str) -> None:
    """Raise one error naming every missing package of ``modules`` (of ``extra``) at once.

    Raises:
        SpleeterError: ``{purpose} needs the evaluation extra, missing: musdb, museval; ...``
    """
    missing = missing_modules(modules)
    if missing:
        names = EXTRA_PACKAGES.get(extra, {})
        listed = ", ".join(names.get(module, module) for module in missing)
        raise SpleeterError(
            f"{purpose} needs the {extra} extra, missing: {listed}; install it with "
            f"{install_hint(extra)}"
        )

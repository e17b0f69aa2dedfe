"""Mixed precision training: which compute type, and the Keras policy that applies it.

``--mixed-precision`` trains with float32 weights and a lower-precision compute type: float16
with loss scaling on a GPU (its tensor cores), bfloat16 on a CPU (float32's exponent range, so
no loss scaling; fast on CPUs with AVX-512 BF16 or AMX, emulated and slow on others).
``--mixed-precision-dtype`` picks one by hand.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from .. import SpleeterError
from ..utils.logging import logger

DTYPES = ("float16", "bfloat16")
CHOICES = ("auto", *DTYPES)


def mixed_precision_choice(value: bool | str | None) -> str | None:
    """A caller's mixed precision setting as ``None`` (float32), ``auto`` or a dtype.

    ``True`` means ``auto``; checked without TensorFlow, before any work starts.

    Raises:
        SpleeterError: an unknown compute type.
    """
    if value is None or value is False:
        return None
    if value is True:
        return "auto"
    if value not in CHOICES:
        raise SpleeterError(
            f"Unknown mixed precision type {value!r} (choose from {', '.join(CHOICES)})"
        )
    return str(value)


def cpu_has_bfloat16() -> bool | None:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), None if unknown."""
    try:
        with open("/proc/cpuinfo") as stream:
            for line in stream:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return None


def resolve(choice: str | None) -> str | None:
    """The compute dtype of ``choice`` on this machine (``auto``: float16 on a GPU, else
    bfloat16), logged with the reason; None for float32."""
    choice = mixed_precision_choice(choice)
    if choice is None:
        return None
    import tensorflow as tf

    gpu = bool(tf.config.list_physical_devices("GPU"))
    dtype = choice if choice != "auto" else ("float16" if gpu else "bfloat16")
    if dtype == "bfloat16" and not gpu:
        native = cpu_has_bfloat16()
        note = {True: "native on this CPU", False: "emulated: this CPU has no AVX-512 BF16"}
        support = note.get(native, "CPU support unknown")
        logger.info(f"Mixed precision: bfloat16 compute ({support})")
    else:
        scaling = ", loss scaling" if dtype == "float16" else ""
        logger.info(f"Mixed precision: {dtype} compute{scaling} ({'GPU' if gpu else 'CPU'})")
    return dtype


def active_dtype() -> str | None:
    """The compute dtype of the Keras policy in force, None for float32."""
    import keras

    dtype = keras.mixed_precision.global_policy().compute_dtype
    return None if dtype == "float32" else dtype


@contextmanager
def precision_policy(choice: str | None) -> Iterator[None]:
    """Build and train under the mixed policy of ``choice`` (restored afterwards; inside,
    :func:`active_dtype` says which compute type is in force)."""
    import keras

    dtype = resolve(choice)
    previous = keras.mixed_precision.global_policy()
    if dtype is not None:
        keras.mixed_precision.set_global_policy(f"mixed_{dtype}")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)

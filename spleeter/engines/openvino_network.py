"""The OpenVINO network of a model folder: written from its checkpoint on first use, cached.

For networks the registry describes as a graph (the U-Nets), the first run builds the
``openvino.Model`` straight from the checkpoint's tensors (:mod:`.openvino_graph`), saves it
as OpenVINO IR (``model.xml`` + ``model.bin``) in the user's cache directory, and compiles it
from there with OpenVINO's model cache beside it (``compiled/``). Later runs find the IR by the
checkpoint's fingerprint and load the compiled network from OpenVINO's cache: 0.1 s instead of
reading, building and compiling 150 MB of weights (measured on the 4-stem U-Net, see
docs/performance.md). OpenVINO keys its compiled blobs by the file, the device, its version
and the compile options, so a changed CPU or OpenVINO recompiles by itself.

Nothing is written next to the checkpoint: the IR is device-independent but the compiled blobs
are not, and a model folder may be shared or read-only. The cache keeps the
:data:`KEPT_NETWORKS` most recently used networks.
"""

import contextlib
import hashlib
import os
import shutil
import time
from pathlib import Path
from typing import Any

from ..model import architecture
from ..model.checkpoint import find_checkpoint, tensor_reader
from ..utils.logging import logger
from .onnx_export import cache_directory, fingerprint

IR_FORMAT = 1
"""Bumped when the written network changes, so older cached ones are rebuilt."""
KEPT_NETWORKS = 4
STALE_STAGING_S = 86400.0
XML, BIN, COMPILED, USED = "model.xml", "model.bin", "compiled", "used"


def network_cache() -> Path:
    """Where the networks live: ``$XDG_CACHE_HOME/spleeter/openvino``."""
    return cache_directory().parent / "openvino"


def cached_network(params: dict[str, Any], model_dir: str, openvino: Any) -> Path | Any | None:
    """The IR (``model.xml``) of the network of ``params`` with the weights in ``model_dir``,
    written on first use (the ``openvino.Model`` itself when the cache cannot be written); None
    when the registry has no graph for this network or the folder has no checkpoint (an
    exported ``model.onnx`` alone)."""
    from .. import SpleeterError

    write = architecture(params).graph_function()
    if write is None:
        return None
    try:
        checkpoint = find_checkpoint(model_dir)
    except SpleeterError:
        return None
    key = hashlib.sha256(
        f"openvino-ir-{IR_FORMAT}:{fingerprint(params, checkpoint)}".encode()
    ).hexdigest()[:32]
    folder = network_cache() / key
    if _complete(folder):
        with contextlib.suppress(OSError):  # a read-only cache still serves
            os.utime(folder / USED)
        return folder / XML
    started = time.perf_counter()
    from .openvino_graph import openvino_model

    model = openvino_model(openvino, write, params, tensor_reader(checkpoint))
    staging = folder.with_name(f".{key}.{os.getpid()}.part")
    try:
        openvino.save_model(model, str(staging / XML), compress_to_fp16=False)
        # the weights' size, checked on every use: a cut-short cache is rebuilt, never run
        (staging / USED).write_text(str((staging / BIN).stat().st_size))
        if folder.exists():  # an incomplete one (a complete one returned above): set aside
            aside = folder.with_name(f".{key}.{os.getpid()}.stale")
            os.replace(folder, aside)
            shutil.rmtree(aside, ignore_errors=True)
        os.replace(staging, folder)  # fails if another process installed one meanwhile
    except (OSError, RuntimeError) as error:  # OpenVINO raises RuntimeError for its writes
        if _complete(folder):  # another process won
            return folder / XML
        logger.debug(f"OpenVINO network not cached ({error}): compiling it in memory")
        return model
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info(
        f"Built the network of {checkpoint} for OpenVINO in {time.perf_counter() - started:.1f} "
        f"s, once; later runs reuse {folder}"
    )
    _forget_old(folder.parent)
    return folder / XML


def compiled_cache(network: Path | Any) -> str | None:
    """OpenVINO's ``CACHE_DIR`` for a cached network: beside it, so that the compiled blobs go
    when the network does (None for a network held in memory)."""
    return str(network.parent / COMPILED) if isinstance(network, Path) else None


def forget_network(network: Path) -> None:
    """Remove a cached network (and its compiled blobs)."""
    shutil.rmtree(network.parent, ignore_errors=True)


def _complete(folder: Path) -> bool:
    """Whether ``folder`` holds a whole network: its stamp (whose time says when it was last
    used) records the size its weights had when written."""
    try:
        return (folder / XML).is_file() and int((folder / USED).read_text()) == (
            folder / BIN
        ).stat().st_size
    except (OSError, ValueError):
        return False


def _forget_old(root: Path) -> None:
    """Remove all but the :data:`KEPT_NETWORKS` most recently used networks, and staging
    folders a crashed build left over a day ago."""
    used: list[tuple[float, Path]] = []
    for path in root.iterdir():
        try:
            if path.name.startswith("."):
                if time.time() - path.stat().st_mtime > STALE_STAGING_S:
                    shutil.rmtree(path, ignore_errors=True)
            else:
                used.append(((path / USED).stat().st_mtime, path))
        except OSError:  # pruned or being written by another process meanwhile
            continue
    for _, stale in sorted(used, reverse=True)[KEPT_NETWORKS:]:
        shutil.rmtree(stale, ignore_errors=True)

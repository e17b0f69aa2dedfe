"""Release archives of model folders (``spleeter package MODEL_DIR -o RELEASE_DIR``).

An archive is what upstream publishes and :class:`~spleeter.model.provider.github.
GithubModelProvider` downloads: ``<name>.tar.gz`` holding ``checkpoint``, ``model.index``,
``model.data-00000-of-00001`` (and ``model.meta``) at its root, its SHA-256 listed under
``name`` in the release's ``checksum.json``. Ours also hold the folder's ``model.json``, so the
downloaded folder describes itself. Only what separation needs is packed: the optimizer slots
and other training state are left out (a third of the size, as upstream's releases).
"""

import json
import os
import tarfile
import tempfile
from pathlib import Path

from . import SpleeterError
from .model.checkpoint import find_checkpoint, write_tensors
from .model.description import describe_model, write_model_description
from .model.provider.github import GithubModelProvider, compute_file_checksum
from .training.checkpointing import is_training_state
from .utils.configuration import read_model_description

RELEASE_PREFIX = "model"
"""The checkpoint name inside a release archive (upstream's: ``model.index``...)."""


def package_model(
    model_dir: str | os.PathLike, output: str | os.PathLike, name: str | None = None
) -> Path:
    """Write ``<output>/<name>.tar.gz`` (default name: the folder's) from the model folder's
    latest checkpoint and record its SHA-256 in ``<output>/checksum.json``; return the archive.

    Raises:
        SpleeterError: the folder does not describe itself (no ``model.json``) or has no
            checkpoint, or the output cannot be written.
    """
    import tensorflow as tf

    folder = Path(model_dir)
    name = name or folder.resolve().name
    if not name or "/" in name or name.startswith("."):
        raise SpleeterError(f"{name!r} cannot name a release archive")
    description = read_model_description(folder)
    checkpoint = find_checkpoint(folder)
    reader = tf.train.load_checkpoint(checkpoint)
    names = [n for n in reader.get_variable_to_shape_map() if not is_training_state(n)]
    release = Path(output)
    try:
        release.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=release) as staging:
            prefix = write_tensors(
                Path(staging) / RELEASE_PREFIX, {n: reader.get_tensor(n) for n in names}
            )
            params = dict(description["configuration"])
            packed = describe_model(params, prefix, description.get("training"))
            write_model_description(staging, packed)
            archive = release / f"{name}.tar.gz"
            temporary = release / f".{name}.tar.gz.part"
            with tarfile.open(temporary, "w:gz") as tar:
                for path in sorted(Path(staging).iterdir()):
                    tar.add(path, arcname=path.name)
            os.replace(temporary, archive)
        _record_checksum(release, name, compute_file_checksum(archive))
    except OSError as error:
        raise SpleeterError(f"Cannot write the release archive into {release}: {error}") from error
    return archive


def _record_checksum(release: Path, name: str, checksum: str) -> None:
    """Add ``name``'s checksum to the release's index, keeping the other entries."""
    index_path = release / GithubModelProvider.CHECKSUM_INDEX
    index: dict[str, str] = {}
    if index_path.is_file():
        try:
            index = dict(json.loads(index_path.read_text()))
        except (ValueError, TypeError) as error:
            raise SpleeterError(f"{index_path} is not a checksum index: {error}") from error
    index[name] = checksum
    temporary = index_path.with_name(f".{index_path.name}.part")
    temporary.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, index_path)


__all__ = ["RELEASE_PREFIX", "package_model"]

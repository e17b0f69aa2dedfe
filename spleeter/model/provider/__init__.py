"""Model provider: makes sure a pretrained model is on disk before it is loaded.

A model is a directory of TensorFlow checkpoint files. A relative model directory lives under
``MODEL_PATH`` (default ``pretrained_models``, relative to the working directory). A directory
that already exists is used as it is; a missing one is downloaded by the provider (see
:class:`spleeter.model.provider.github.GithubModelProvider`) into a temporary directory next to
the target, which is renamed into place only once complete, so that a failed download leaves
nothing behind.

Example::

    >>> from spleeter.model.provider import ModelProvider
    >>> ModelProvider.default().get("2stems")
    'pretrained_models/2stems'
"""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod

from ... import SpleeterError
from ...utils.logging import logger

__all__ = ["ModelProvider"]


class ModelProvider(ABC):
    """Manages model directories on disk, downloading the missing ones."""

    DEFAULT_MODEL_PATH: str = os.environ.get("MODEL_PATH", "pretrained_models")
    """Model root as seen at import time; :meth:`model_path` reads the environment each call."""

    MODEL_PROBE_PATH: str = ".probe"
    """Marker file written into a directory once its model has been downloaded."""

    @abstractmethod
    def download(self, name: str, path: str) -> None:
        """Download the model called ``name`` and extract its files into directory ``path``.

        Raises:
            SpleeterError: If the model cannot be retrieved.
        """

    @staticmethod
    def writeProbe(directory: str) -> None:  # noqa: N802 (upstream's public name)
        """Write the ``.probe`` marker file (containing ``OK``) into ``directory``."""
        probe = os.path.join(directory, ModelProvider.MODEL_PROBE_PATH)
        with open(probe, "w", encoding="utf-8") as stream:
            stream.write("OK")

    @classmethod
    def model_path(cls) -> str:
        """The root of relative model directories: ``$MODEL_PATH``, read at call time."""
        return os.environ.get("MODEL_PATH", cls.DEFAULT_MODEL_PATH)

    @classmethod
    def local_directory(cls, model_directory: str) -> str:
        """Where ``model_directory`` is (or would be installed) on this machine: as given when
        absolute; else under :meth:`model_path`, unless only the working directory has it."""
        if os.path.isabs(model_directory):
            return model_directory
        under_model_path = os.path.join(cls.model_path(), model_directory)
        if not os.path.exists(under_model_path) and os.path.isdir(model_directory):
            # A model trained here with a relative model_dir (``spleeter train`` writes it
            # relative to the working directory): use it rather than download anything.
            logger.debug(f"Using model directory {model_directory} (working directory)")
            return model_directory
        return under_model_path

    def get(self, model_directory: str, unpublished: str | None = None) -> str:
        """Ensure the model directory is available on disk and return it.

        A relative ``model_directory`` is taken under :meth:`model_path`; if it is not there but
        exists relative to the working directory (a model trained here), that one is used. An
        existing directory is returned untouched (no network access: it may be a user's own
        model); a missing one is downloaded, the model name being its last path component.

        ``unpublished`` (a configuration's ``model_unpublished``) marks a model that has no
        release to download: a missing directory is then an error, before any network access,
        whose message ends with that text (how to make the model).

        Raises:
            SpleeterError: If the model is missing and cannot be downloaded.
        """
        model_directory = self.local_directory(model_directory)
        if os.path.isdir(model_directory):
            return model_directory
        if os.path.exists(model_directory):
            raise SpleeterError(f"Model directory {model_directory} exists but is not a directory")
        if unpublished:
            name = os.path.basename(os.path.normpath(model_directory))
            raise SpleeterError(
                f"Model {name} has no published weights and {model_directory} does not exist; "
                f"make it with: {unpublished}"
            )
        self._install(model_directory)
        return model_directory

    def _install(self, directory: str) -> None:
        """Download the model into a staging directory, then rename it to ``directory``."""
        name = os.path.basename(os.path.normpath(directory))
        parent = os.path.dirname(os.path.abspath(directory))
        try:
            os.makedirs(parent, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=f".{name}-", suffix=".part", dir=parent)
            # mkdtemp makes it 0700: a shared model store must be readable like any other
            # folder, so the published directory follows the umask as os.mkdir would.
            os.chmod(staging, 0o777 & ~current_umask())
        except OSError as error:
            raise SpleeterError(
                f"Cannot create model directory {directory} for model {name}: {error}"
            ) from error
        try:
            self._fill(name, staging, directory)
            self._publish(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _fill(self, name: str, staging: str, directory: str) -> None:
        """Download model ``name`` into ``staging`` and mark it complete with the probe."""
        try:
            self.download(name, staging)
            self.writeProbe(staging)
        except SpleeterError as error:
            raise SpleeterError(f"{error} {_offline_hint(name, directory)}") from error
        except OSError as error:
            raise SpleeterError(
                f"Cannot write model {name} into {directory}: {error}. "
                f"{_offline_hint(name, directory)}"
            ) from error

    @staticmethod
    def _publish(staging: str, directory: str) -> None:
        """Atomically rename ``staging`` to ``directory``; a concurrent winner is kept."""
        try:
            os.rename(staging, directory)
        except OSError as error:
            if os.path.isdir(directory):
                logger.debug(f"{directory} was installed concurrently, keeping it")
                return
            raise SpleeterError(f"Cannot install model into {directory}: {error}") from error

    @classmethod
    def default(cls) -> ModelProvider:
        """The default provider: GitHub releases, configured by the environment."""
        from .github import GithubModelProvider

        return GithubModelProvider.from_environ()


def _offline_hint(name: str, directory: str) -> str:
    """The sentence telling the user how to provide model ``name`` without a network."""
    return (
        f"To work offline, put the {name} model files (checkpoint, model.index, "
        f"model.data-*) in {directory}, or set MODEL_PATH to a directory that contains {name}/."
    )


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

"""Self-supervised pretraining (HuBERT-style) and the SSL encoder of the fused separator.

Modules: ``config`` (configuration keys), ``features`` (log-mel / MFCC on the separator's STFT
grid), ``layers`` (the Keras encoder), ``masking`` (span masks), ``units`` (k-means targets),
``data`` (unlabelled audio), ``pretrain`` (the loop), ``encoder`` (encoder directories and the
:class:`SSLEncoder` feature API), ``fusion`` (the ``unet.ssl_unet`` separator), ``export``
(ONNX export of the encoder alone), ``convert`` (external checkpoints). See docs/ssl.md.

:func:`run_pretraining` is ``spleeter pretrain``: it checks the configuration and the audio
before TensorFlow is imported, then runs the pending iterations.
"""

import os
from typing import Any

from .. import SpleeterError
from ..audio.adapter import AudioAdapter
from ..utils.logging import logger
from .config import encoder_config, pretrain_settings


def run_pretraining(
    params: dict[str, Any],
    data: str | None,
    audio_adapter: AudioAdapter,
    *,
    csv_path: str | None = None,
    max_steps: int | None = None,
    iterations: int | None = None,
    seed: int | None = None,
    mixed_precision: bool | str | None = None,
    export: bool = False,
    quiet: bool = False,
    verbose: bool = False,
) -> Any:
    """Pretrain the encoder of ``params`` on the audio of ``data``; return the pretrainer
    (None when everything was already done).

    ``data`` is a directory of audio files (searched recursively) or, with ``csv_path``, the
    directory the CSV's ``<mix_name>_path`` entries are relative to. It may be None when every
    iteration is already trained (to ``--export`` only).

    Raises:
        SpleeterError: unusable configuration or audio, or data needed but not given.
    """
    from ..model.registry import ARCHITECTURES, model_type

    entry = ARCHITECTURES.get(model_type(params))
    if entry is not None and entry.task == "reconstruction":
        # An autoencoder (the cluster family's): the reconstruction task on the same loop.
        if iterations is not None:
            raise SpleeterError("--iterations applies to masked prediction, not to autoencoders")
        from ..training.reconstruction import run_reconstruction

        return run_reconstruction(
            params,
            data,
            audio_adapter,
            csv_path=csv_path,
            max_steps=max_steps,
            seed=seed,
            mixed_precision=mixed_precision,
            export=export,
            quiet=quiet,
            verbose=verbose,
        )
    settings = pretrain_settings(
        params,
        max_steps=max_steps,
        iterations=iterations,
        seed=seed,
        mixed_precision=mixed_precision,
    )
    config = encoder_config(params)
    if settings.extra:
        logger.warning(f"Unknown pretrain key(s) ignored: {', '.join(sorted(settings.extra))}")
    chunks = None
    if data is None and not os.path.isdir(settings.encoder_dir):
        raise SpleeterError("Pretraining needs audio: give -d AUDIO_DIR")
    if data is not None:
        from ..training.unlabelled import audio_files, plan_chunks

        files = audio_files(data, csv_path, str(params.get("mix_name", "mix")))
        chunks = plan_chunks(files, params, settings)
    from ..engines.tensorflow import import_tensorflow

    import_tensorflow()
    from .data import PretrainCorpus
    from .encoder import EncoderAudio
    from .pretrain import pretrain, pretraining_done

    audio = EncoderAudio.from_params(params, frames=settings.frames)
    pretrainer = None
    if pretraining_done(settings):
        logger.info(f"{settings.encoder_dir} is already pretrained: nothing to do")
    else:
        if chunks is None:
            raise SpleeterError("Pretraining needs audio: give -d AUDIO_DIR")
        corpus = PretrainCorpus.load(chunks, params, config, audio_adapter, settings.frames)
        pretrainer = pretrain(config, audio, settings, corpus, quiet, verbose)
    if export:
        from .export import export_encoder_directory

        target = export_encoder_directory(settings.encoder_dir)
        logger.info(f"Encoder ONNX model written to {target}")
    return pretrainer


def __getattr__(name: str) -> Any:
    """``SSLEncoder`` without importing Keras with the package."""
    if name == "SSLEncoder":
        from .encoder import SSLEncoder

        return SSLEncoder
    raise AttributeError(name)


__all__ = ["SSLEncoder", "run_pretraining"]

"""Unlabelled audio for pretraining: files, chunks, log-mel frames and masked examples.

The audio is a directory (every audio file below it, recursively, by extension) or an
upstream-format dataset CSV (its ``<mix_name>_path`` column, paths relative to the data
directory as for ``spleeter train``). Each file gives up to ``n_chunks_per_file`` chunks of
``chunk_duration`` seconds, placed as the training dataset places its chunks (a file shorter
than a chunk is one chunk). Every chunk is decoded once, at the configuration's sample rate and
channel count, and kept in memory as log-mel frames (``n_mels`` float32 per frame: about 11 kB
per second of audio at 64 bands).

Example ``i`` of iteration ``k``'s stream depends only on ``(random_seed, k, i)``: the chunk
(each epoch its own seeded order), the ``frames``-frame crop and the span mask, so a resumed run
sees exactly the batches an uninterrupted one would.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .. import SpleeterError
from ..audio.adapter import AudioAdapter
from ..audio.features import chunk_features_magnitude, encoder_mel_matrix, log_mel
from ..dataset import epoch_order, load_audio
from ..model.encoder_config import EncoderConfig
from ..training.unlabelled import AudioChunk
from ..utils.logging import logger
from .config import PretrainSettings
from .masking import span_mask

WORKERS = 4
"""Threads decoding chunks (file reads and FFTs release the GIL)."""


class PretrainCorpus:
    """Log-mel frames ``(frames, n_mels)`` of every chunk, computed once."""

    def __init__(self, chunks: list[AudioChunk], features: list[np.ndarray]) -> None:
        self.chunks = chunks
        self.features = features

    @classmethod
    def load(
        cls,
        chunks: list[AudioChunk],
        params: dict[str, Any],
        config: EncoderConfig,
        audio_adapter: AudioAdapter,
        min_frames: int,
        workers: int = WORKERS,
    ) -> "PretrainCorpus":
        """Decode every chunk and compute its log-mel frames (on the separator's STFT grid,
        first ``F`` bins, the encoder's mel matrix). Chunks that fail to decode or give fewer
        than ``min_frames`` frames are skipped with a warning.

        Raises:
            SpleeterError: no chunk is usable.
        """
        frame_length, frame_step = int(params["frame_length"]), int(params["frame_step"])
        n_bins, channels = int(params["F"]), int(params["n_channels"])
        matrix = encoder_mel_matrix(config, n_bins)
        rate = int(params["sample_rate"])

        def features(chunk: AudioChunk) -> np.ndarray | str:
            try:
                waveform = load_audio(chunk.path, chunk.start, chunk.duration, rate, audio_adapter)
            except SpleeterError as error:
                return f"{chunk.path} at {chunk.start:.1f} s: {error}"
            magnitude = chunk_features_magnitude(
                waveform, frame_length, frame_step, n_bins, channels
            )
            if magnitude.shape[0] < min_frames:
                return f"{chunk.path} at {chunk.start:.1f} s: {magnitude.shape[0]} frames"
            return log_mel(magnitude, matrix)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            results = list(pool.map(features, chunks))
        kept = [(c, r) for c, r in zip(chunks, results, strict=True) if not isinstance(r, str)]
        problems = [r for r in results if isinstance(r, str)]
        if problems:
            logger.warning(f"Skipping {len(problems)} chunk(s): " + "; ".join(problems[:5]))
        if not kept:
            raise SpleeterError("No audio chunk could be decoded for pretraining")
        corpus = cls([c for c, _ in kept], [r for _, r in kept])  # type: ignore[misc]
        seconds = sum(f.shape[0] for f in corpus.features) * frame_step / rate
        logger.info(f"Pretraining audio: {len(corpus.features)} chunks, {seconds / 60:.1f} min")
        return corpus

    @property
    def frame_counts(self) -> list[int]:
        return [f.shape[0] for f in self.features]


class MaskedExamples:
    """The random-access stream of masked-prediction examples of one iteration."""

    def __init__(
        self,
        features: list[np.ndarray],
        units: list[np.ndarray],
        settings: PretrainSettings,
        iteration: int,
    ) -> None:
        self.features = features
        self.units = units
        self.settings = settings
        self.seed = [settings.random_seed, iteration]

    def example(self, position: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(log_mel (frames, n_mels), mask (frames,), units (frames,))`` of example
        ``position``."""
        epoch, offset = divmod(int(position), len(self.features))
        chunk = int(epoch_order((*self.seed, epoch), len(self.features))[offset])
        frames = self.settings.frames
        rng = np.random.default_rng([*self.seed, epoch, int(position)])
        first = int(rng.integers(0, self.features[chunk].shape[0] - frames + 1))
        mask = span_mask(
            rng,
            frames,
            self.settings.mask_prob,
            self.settings.mask_length,
            self.settings.min_masks,
        )
        window = slice(first, first + frames)
        return self.features[chunk][window], mask, self.units[chunk][window]

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The examples of training step ``step`` (0-based), stacked."""
        size = self.settings.batch_size
        examples = [self.example(step * size + k) for k in range(size)]
        return tuple(np.stack(parts) for parts in zip(*examples, strict=True))  # type: ignore[return-value]

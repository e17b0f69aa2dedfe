"""TensorBoard event files, where upstream's Estimator wrote them.

Training scalars go to ``model_dir`` (``loss``, one ``<instrument>_spectrogram`` loss per
instrument, ``global_step/sec``), each the mean over the steps since the previous summary,
every ``save_summary_steps``; validation scalars to ``model_dir/eval`` (``loss``,
``absolute_difference`` (the same value, upstream's metric name) and the per-instrument losses).
"""

import os
from typing import Any


class Summaries:
    """Accumulates training losses and writes the scalars of training and validation."""

    def __init__(self, model_dir: str, every: int, validation: bool = True) -> None:
        """Write into ``model_dir`` (and ``model_dir/eval`` when ``validation``)."""
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self._tf = tf
        # What tf.summary.scalar writes, without needing the tensorboard package installed.
        self._metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
            data_class=summary_pb2.DATA_CLASS_SCALAR,
        ).SerializeToString()
        self.every = max(1, int(every))
        self._train = tf.summary.create_file_writer(model_dir)
        self._eval = (
            tf.summary.create_file_writer(os.path.join(model_dir, "eval")) if validation else None
        )
        self._sums: dict[str, float] = {}
        self._count = 0

    def add(self, step: int, losses: dict[str, float], rate: float) -> None:
        """Record one training step; write the means every ``every`` steps."""
        for name, value in losses.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._count += 1
        if step % self.every == 0:
            self._write(self._train, step, {k: v / self._count for k, v in self._sums.items()})
            self._write(self._train, step, {"global_step/sec": rate})
            self._sums, self._count = {}, 0

    def validation(self, step: int, losses: dict[str, float]) -> None:
        """Write validation losses (``loss`` is the total)."""
        values = dict(losses)
        values["absolute_difference"] = values["loss"]
        if self._eval is not None:
            self._write(self._eval, step, values)

    def _write(self, writer: Any, step: int, values: dict[str, float]) -> None:
        with writer.as_default():
            for name, value in values.items():
                tensor = self._tf.constant(value, dtype=self._tf.float32)
                self._tf.summary.write(name, tensor, step=step, metadata=self._metadata)
        writer.flush()

    def close(self) -> None:
        self._train.close()
        if self._eval is not None:
            self._eval.close()

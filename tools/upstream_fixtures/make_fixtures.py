#!/usr/bin/env python
"""Produce golden fixtures with upstream Spleeter 2.4.2 (``tests/fixtures/upstream``).

Run this with the interpreter of a virtual environment holding upstream Spleeter
2.4.2 / TensorFlow 2.12 (NOT with this repository's package)::

    /work/upstream-venv/bin/python tools/upstream_fixtures/make_fixtures.py

Stages (``--stages``, default all, always executed in this order):

``data``
    Decode the MUSDB18 excerpt shipped in the stempeg wheel into float32 WAV
    files in a work directory and write upstream-format training CSVs.
``train``
    Train three tiny U-Nets with upstream's own ``spleeter train`` command.
``stats``
    Replace the BatchNormalization moving statistics (never updated by upstream
    training) by real per-channel statistics of each BN input over the training
    mixture, then write a slim checkpoint (model variables + ``global_step``).
``blstm``
    Create the variables of upstream's ``blstm.blstm`` model (CuDNNLSTM, cannot
    run without a GPU), fill them with seeded random values, save a checkpoint and
    verify the CuDNN -> standard LSTM weight mapping used for its golden output.
``golden``
    Write ``input.flac`` and call upstream's ``Separator.separate`` for every case.
``cli``
    Run upstream's ``spleeter separate`` CLI and keep its 16-bit WAV stems (as FLAC).
``manifest``
    Write ``manifest.json`` and print the size of the fixture directory.

The ``golden``/``cli``/``manifest`` stages only need the committed checkpoints, so the
golden data can be regenerated without retraining: ``--stages golden,cli,manifest``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

# --------------------------------------------------------------------------------------
# Locations and global constants
# --------------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "upstream"
CONFIGS = FIXTURES / "configs"
MODELS = FIXTURES / "models"
GOLDEN = FIXTURES / "golden"
CLI_DIR = FIXTURES / "cli"
INPUT_FLAC = FIXTURES / "input.flac"
MANIFEST = FIXTURES / "manifest.json"
DEFAULT_WORK = Path("/tmp/spleeter_upstream_fixtures")
DEFAULT_EXCERPT = Path(
    "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/stempeg/data/"
    "The Easton Ellises - Falcon 69.stem.mp4"
)
UPSTREAM_BIN = Path(sys.executable).parent

SAMPLE_RATE = 44100
STREAMS = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
SEED = 20240607  # numpy seed for everything this script draws itself

# Golden input: a real excerpt of the mixture, quantised to 16 bits.
INPUT_OFFSET = 44100  # samples (1.0 s)
INPUT_LENGTH = 132300  # samples (3.0 s) -> 134 STFT frames: 3 blocks of T=64, 2 of T=128

# Storage of golden outputs: every STRIDE-th sample, one contiguous window at full
# rate around the first block boundary, and float64 sums / sums of squares.
STRIDE = 37
WINDOW_LENGTH = 512

# "piano" stem of the 5-stem data set: a smooth band of the "other" stem.
PIANO_BAND_HZ = (120.0, 240.0, 2000.0, 4000.0)  # raised-cosine edges: rise 120->240, fall 2k->4k

# --------------------------------------------------------------------------------------
# Configurations (upstream keys). Relative model_dir: training runs with CWD = work
# directory; separation resolves it under $MODEL_PATH = tests/fixtures/upstream/models.
# --------------------------------------------------------------------------------------

_COMMON = {
    "mix_name": "mix",
    "sample_rate": SAMPLE_RATE,
    "frame_length": 4096,
    "frame_step": 1024,
    "n_channels": 2,
    "separation_exponent": 2,
    "mask_extension": "zeros",
    "learning_rate": 1e-3,
    "batch_size": 2,
    "throttle_secs": 3600,
    "save_summary_steps": 100,
    "chunk_duration": 4.0,
    "n_chunks_per_song": 2,
    "validation_cache": None,
}


def _config(name: str, dataset: str, **values) -> dict:
    config = dict(_COMMON)
    config.update(
        model_dir=name,
        train_csv=f"data/{dataset}.csv",
        validation_csv=f"data/{dataset}.csv",
        training_cache=f"cache/{name}/training",
    )
    config.update(values)
    return config


TRAINED = {
    # Empty activation params: encoder LeakyReLU(0.2), decoder ReLU.
    "unet_2stems": _config(
        "unet_2stems",
        "2stems",
        instrument_list=["vocals", "accompaniment"],
        T=64,
        F=1024,
        random_seed=0,
        train_max_steps=600,
        save_checkpoints_steps=600,
        model={"type": "unet.unet", "params": {"conv_n_filters": [4, 4, 8, 8, 16, 16]}},
    ),
    "unet_4stems": _config(
        "unet_4stems",
        "4stems",
        instrument_list=["vocals", "drums", "bass", "other"],
        T=128,
        F=1024,
        random_seed=3,
        train_max_steps=400,
        save_checkpoints_steps=400,
        model={
            "type": "unet.unet",
            "params": {
                "conv_n_filters": [4, 4, 8, 8, 8, 16],
                "conv_activation": "ELU",
                "deconv_activation": "ELU",
            },
        },
    ),
    "softmax_unet_5stems": _config(
        "softmax_unet_5stems",
        "5stems",
        instrument_list=["vocals", "piano", "drums", "bass", "other"],
        T=64,
        F=1024,
        random_seed=8,
        train_max_steps=400,
        save_checkpoints_steps=400,
        model={
            "type": "unet.softmax_unet",
            "params": {
                "conv_n_filters": [4, 4, 4, 8, 8, 16],
                "conv_activation": "ELU",
                "deconv_activation": "ELU",
            },
        },
    ),
}

BLSTM = _config(
    "blstm_2stems",
    "2stems",
    instrument_list=["vocals", "accompaniment"],
    T=64,
    F=64,
    random_seed=0,
    train_max_steps=1,
    save_checkpoints_steps=1,
    model={"type": "blstm.blstm", "params": {"lstm_units": 8}},
)

# Separation-only variants: same checkpoint as their base (like upstream's -16kHz files).
VARIANTS = {
    "unet_2stems_f1536": ("unet_2stems", {"F": 1536}),
    "unet_2stems_average": ("unet_2stems", {"mask_extension": "average"}),
    "unet_4stems_exponent1": ("unet_4stems", {"separation_exponent": 1}),
}

# name, config, input transform, MWF
CASES = [
    ("2stems", "unet_2stems", "none", False),
    ("2stems_mwf", "unet_2stems", "none", True),
    ("4stems", "unet_4stems", "none", False),
    ("4stems_mwf", "unet_4stems", "none", True),
    ("5stems", "softmax_unet_5stems", "none", False),
    ("blstm", "blstm_2stems", "none", False),
    ("2stems_mono", "unet_2stems", "mono", False),
    ("2stems_3ch", "unet_2stems", "3ch", False),
    ("2stems_f1536", "unet_2stems_f1536", "none", False),
    ("2stems_average", "unet_2stems_average", "none", False),
    ("4stems_exponent1", "unet_4stems_exponent1", "none", False),
]

INPUT_TRANSFORMS = {
    "none": "the stereo input as read (float32 = int16 / 32768)",
    "mono": "waveform[:, :1] (left channel only, shape (L, 1)); upstream duplicates it",
    "3ch": "np.concatenate([w, w[:, :1] - w[:, 1:2]], axis=1) (shape (L, 3)); "
    "upstream keeps the first two channels",
}


def all_configs() -> dict[str, dict]:
    configs = dict(TRAINED)
    configs["blstm_2stems"] = BLSTM
    for name, (base, changes) in VARIANTS.items():
        config = dict(TRAINED[base])
        config.update(changes)
        configs[name] = config
    return configs


def log(message: str) -> None:
    print(f"[make_fixtures] {message}", flush=True)


# --------------------------------------------------------------------------------------
# Audio helpers (ffmpeg only, the upstream venv has no soundfile)
# --------------------------------------------------------------------------------------


FFMPEG = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
BITEXACT = ["-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]
FFPROBE_CODEC = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"]


def ffmpeg_decode(path: Path, stream: int = 0, fmt: str = "f32le") -> np.ndarray:
    """Decode one audio stream to a ``(n, 2)`` array at 44.1 kHz (float32 or int16)."""
    options = f"-map 0:a:{stream} -f {fmt} -ar {SAMPLE_RATE} -ac 2".split()
    command = [*FFMPEG, "-i", str(path), *options, "pipe:"]
    raw = subprocess.run(command, check=True, capture_output=True).stdout
    dtype = {"f32le": "<f4", "s16le": "<i2"}[fmt]
    return np.frombuffer(raw, dtype=dtype).reshape(-1, 2).copy()


def ffmpeg_write(path: Path, data: np.ndarray, codec: str) -> None:
    """Write ``data`` (float32 for pcm_f32le, int16 for flac) with a bit-exact muxer."""
    fmt = "f32le" if data.dtype == np.float32 else "s16le"
    options = f"-f {fmt} -ar {SAMPLE_RATE} -ac {data.shape[1]}".split()
    command = [*FFMPEG, *options, "-i", "pipe:", "-c:a", codec, *BITEXACT, str(path)]
    subprocess.run(command, input=np.ascontiguousarray(data).tobytes(), check=True)


def flac_from_wav(source: Path, target: Path) -> None:
    """Losslessly re-encode a 16-bit WAV as 16-bit FLAC."""
    options = ["-c:a", "flac", "-sample_fmt", "s16"]
    subprocess.run([*FFMPEG, "-i", str(source), *options, *BITEXACT, str(target)], check=True)


def band_weights(n: int) -> np.ndarray:
    """Smooth band-pass gain on the rfft grid of an ``n``-sample signal."""
    f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    a, b, c, d = PIANO_BAND_HZ
    w = np.zeros_like(f)
    rise = (f >= a) & (f < b)
    w[rise] = 0.5 - 0.5 * np.cos(np.pi * (f[rise] - a) / (b - a))
    w[(f >= b) & (f <= c)] = 1.0
    fall = (f > c) & (f < d)
    w[fall] = 0.5 + 0.5 * np.cos(np.pi * (f[fall] - c) / (d - c))
    return w


# --------------------------------------------------------------------------------------
# Stage: data
# --------------------------------------------------------------------------------------


def stage_data(work: Path, excerpt: Path) -> None:
    data = work / "data"
    song = data / "falcon"
    song.mkdir(parents=True, exist_ok=True)
    stems = {name: ffmpeg_decode(excerpt, k).astype(np.float64) for name, k in STREAMS.items()}
    n = min(len(x) for x in stems.values())
    stems = {name: x[:n] for name, x in stems.items()}
    stems["accompaniment"] = stems["drums"] + stems["bass"] + stems["other"]
    spectrum = np.fft.rfft(stems["other"], axis=0)
    stems["piano"] = np.fft.irfft(spectrum * band_weights(n)[:, None], n=n, axis=0)
    stems["other_5stems"] = stems["other"] - stems["piano"]
    for name, x in stems.items():
        ffmpeg_write(song / f"{name}.wav", x.astype(np.float32), "pcm_f32le")
    residual = stems["mixture"] - stems["vocals"] - stems["accompaniment"]
    log(
        f"decoded {n} samples ({n / SAMPLE_RATE:.3f} s); mixture - sum(stems) max abs "
        f"{np.abs(residual).max():.2e}; piano/other energy ratio "
        f"{(stems['piano'] ** 2).sum() / (stems['other'] ** 2).sum():.3f}"
    )
    duration = n / SAMPLE_RATE
    layouts = {
        "2stems": [("vocals", "vocals"), ("accompaniment", "accompaniment")],
        "4stems": [("vocals", "vocals"), ("drums", "drums"), ("bass", "bass"), ("other", "other")],
        "5stems": [
            ("vocals", "vocals"),
            ("piano", "piano"),
            ("drums", "drums"),
            ("bass", "bass"),
            ("other", "other_5stems"),
        ],
    }
    for name, columns in layouts.items():
        header = ["mix_path"] + [f"{instrument}_path" for instrument, _ in columns] + ["duration"]
        row = ["falcon/mixture.wav"] + [f"falcon/{f}.wav" for _, f in columns] + [f"{duration:.6f}"]
        (data / f"{name}.csv").write_text(",".join(header) + "\n" + ",".join(row) + "\n")


# --------------------------------------------------------------------------------------
# Stage: configs + train
# --------------------------------------------------------------------------------------


def write_configs() -> None:
    CONFIGS.mkdir(parents=True, exist_ok=True)
    for name, config in all_configs().items():
        (CONFIGS / f"{name}.json").write_text(json.dumps(config, indent=2) + "\n")


def stage_train(work: Path) -> dict[str, float]:
    timings = {}
    for name in TRAINED:
        model_dir = work / name
        shutil.rmtree(model_dir, ignore_errors=True)
        shutil.rmtree(work / "cache" / name, ignore_errors=True)
        # TF_DETERMINISTIC_OPS makes upstream's CPU training bit-reproducible (without it
        # two runs with the same seed differ from the first batch on).
        env = dict(
            os.environ, PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2", TF_DETERMINISTIC_OPS="1"
        )
        env.pop("PYTHONPATH", None)
        command = [
            str(UPSTREAM_BIN / "spleeter"),
            "train",
            "-p",
            str(CONFIGS / f"{name}.json"),
            "-d",
            str(work / "data"),
            "--verbose",
        ]
        log(f"training {name}: {' '.join(command)}")
        start = time.time()
        with open(work / f"train_{name}.log", "w") as stream:
            subprocess.run(
                command, cwd=work, env=env, check=True, stdout=stream, stderr=subprocess.STDOUT
            )
        timings[name] = time.time() - start
        log(f"trained {name} in {timings[name]:.0f} s")
    return timings


# --------------------------------------------------------------------------------------
# Shared TF helpers
# --------------------------------------------------------------------------------------


def import_upstream():
    """Import upstream spleeter and make sure it is not this repository's package."""
    from importlib.metadata import version

    import spleeter

    location = Path(spleeter.__file__).resolve()
    if REPO in location.parents or version("spleeter") != "2.4.2":
        raise SystemExit(f"not upstream spleeter 2.4.2: {location}")
    return spleeter


def save_checkpoint(sess, variables, target: Path, step: int) -> None:
    import tensorflow as tf

    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    saver = tf.compat.v1.train.Saver(var_list=variables, save_relative_paths=True)
    saver.save(sess, str(target / "model.ckpt"), global_step=step, write_meta_graph=False)
    (target / ".probe").write_text("OK")
    index = (target / "checkpoint").read_text()
    assert str(target) not in index, index  # relative paths only


# --------------------------------------------------------------------------------------
# Stage: stats (real BatchNormalization statistics)
# --------------------------------------------------------------------------------------


def _suffix(n: int) -> str:
    return "" if n == 0 else f"_{n}"


def stage_stats(work: Path) -> None:
    import tensorflow as tf

    import_upstream()
    import spleeter.model.functions.unet as unet_module
    from spleeter.model import EstimatorSpecBuilder, get_model_function
    from spleeter.utils.configuration import load_configuration

    records: list = []
    upstream_bn = unet_module.BatchNormalization

    # Same class name -> same Keras auto-names ("batch_normalization_<n>").
    class BatchNormalization(upstream_bn):  # noqa: D401 - recording wrapper
        def call(self, inputs, *args, **kwargs):
            records.append((self, inputs))
            return super().call(inputs, *args, **kwargs)

    unet_module.BatchNormalization = BatchNormalization
    mixture = ffmpeg_decode(work / "data" / "falcon" / "mixture.wav")
    for name in TRAINED:
        params = load_configuration(str(CONFIGS / f"{name}.json"))
        T, n_instruments = params["T"], len(params["instrument_list"])
        # Training mixture -> upstream's own prediction features; keep whole blocks only.
        with tf.Graph().as_default():
            waveform = tf.compat.v1.placeholder(tf.float32, (None, 2))
            builder = EstimatorSpecBuilder({"waveform": waveform}, params)
            with tf.compat.v1.Session() as sess:
                spec, stft = sess.run(
                    [builder.spectrogram_feature, builder.stft_feature], {waveform: mixture}
                )
        spec = spec[: stft.shape[0] // T]
        log(f"{name}: statistics over {spec.shape[0]} blocks of {spec.shape[1:]}")
        checkpoint = tf.train.latest_checkpoint(str(work / name))
        with tf.Graph().as_default():
            x = tf.compat.v1.placeholder(tf.float32, (None, T, params["F"], 2))
            records.clear()
            get_model_function(params["model"]["type"])(
                x, params["instrument_list"], params["model"]["params"]
            )
            global_step = tf.compat.v1.train.get_or_create_global_step()
            variables = tf.compat.v1.global_variables()
            assert len(records) == 12 * n_instruments, len(records)
            with tf.compat.v1.Session() as sess:
                tf.compat.v1.train.Saver(var_list=variables).restore(sess, checkpoint)
                step = int(sess.run(global_step))
                before = sess.run(
                    [layer.moving_mean for layer, _ in records]
                    + [layer.moving_variance for layer, _ in records]
                )
                assert all(np.all(v == 0) for v in before[: len(records)])
                assert all(np.all(v == 1) for v in before[len(records) :])
                # Depth by depth (creation order is topological): later inputs see the
                # statistics already set for earlier layers, as at inference.
                for depth in range(12):
                    layers = [records[12 * k + depth] for k in range(n_instruments)]
                    values = sess.run([inputs for _, inputs in layers], {x: spec})
                    for k, ((layer, _), value) in enumerate(zip(layers, values, strict=True)):
                        expected = f"batch_normalization{_suffix(12 * k + depth)}/moving_mean:0"
                        assert layer.moving_mean.name == expected, layer.moving_mean.name
                        mean = value.mean(axis=(0, 1, 2), dtype=np.float64)
                        var = value.var(axis=(0, 1, 2), dtype=np.float64)
                        layer.moving_mean.load(mean.astype(np.float32), sess)
                        layer.moving_variance.load(var.astype(np.float32), sess)
                means = sess.run([layer.moving_mean for layer, _ in records])
                variances = sess.run([layer.moving_variance for layer, _ in records])
                for (layer, _), m, v in zip(records, means, variances, strict=True):
                    assert np.any(np.abs(m) > 1e-6) or np.any(np.abs(v - 1) > 1e-6), layer.name
                flat_m, flat_v = np.concatenate(means), np.concatenate(variances)
                log(
                    f"{name}: moving_mean in [{flat_m.min():.4g}, {flat_m.max():.4g}], "
                    f"moving_variance in [{flat_v.min():.4g}, {flat_v.max():.4g}] "
                    f"({len(records)} BN layers, {flat_m.size} channels, step {step})"
                )
                save_checkpoint(sess, variables, MODELS / name, step)
                log(f"{name}: saved {len(variables)} variables to {MODELS / name}")
    unet_module.BatchNormalization = upstream_bn


# --------------------------------------------------------------------------------------
# Stage: blstm (CuDNNLSTM variables + CPU-equivalent recurrence)
# --------------------------------------------------------------------------------------


def cudnn_to_standard(kernel, recurrent_kernel, bias):
    """Weights of ``tf.compat.v1.keras.layers.CuDNNLSTM`` -> ``keras.layers.LSTM``.

    CuDNNLSTM slices its variables per gate (order i, f, c, o) and hands each slice,
    flattened in C order WITHOUT transposition, to cuDNN, whose canonical weight for a
    gate is a row-major ``(units, inputs)`` matrix W applied as ``W @ x``. The standard
    Keras kernel computes ``x @ K``, hence ``K_gate = reshape(kernel_gate, (units, inputs)).T``
    (a real reshuffle when inputs != units) and, for the square recurrent part,
    ``R_gate = recurrent_kernel_gate.T``. cuDNN adds an input and a recurrent bias.
    Works on numpy arrays and TF tensors alike.
    """
    import tensorflow as tf

    units = recurrent_kernel.shape[0]
    n_inputs = kernel.shape[0]
    kernels, recurrents = [], []
    for g in range(4):
        gate = kernel[:, g * units : (g + 1) * units]
        kernels.append(tf.transpose(tf.reshape(gate, (units, n_inputs))))
        recurrents.append(tf.transpose(recurrent_kernel[:, g * units : (g + 1) * units]))
    return (
        tf.concat(kernels, axis=1),
        tf.concat(recurrents, axis=1),
        tf.add(bias[: 4 * units], bias[4 * units :]),
    )


def cudnn_lstm_reference(x, kernel, recurrent_kernel, bias):
    """Numpy float64 LSTM written directly from the cuDNN definition (one direction).

    x: (batch, time, inputs). Parameters are the CuDNNLSTM variables; the per-gate
    matrices are rebuilt exactly as CuDNNLSTM feeds them to cuDNN (see above).
    """
    units = recurrent_kernel.shape[0]
    n_inputs = kernel.shape[0]
    W = [
        kernel[:, g * units : (g + 1) * units].reshape(-1).reshape(units, n_inputs)
        for g in range(4)
    ]
    R = [
        recurrent_kernel[:, g * units : (g + 1) * units].reshape(-1).reshape(units, units)
        for g in range(4)
    ]
    bw = [bias[g * units : (g + 1) * units] for g in range(4)]
    br = [bias[(4 + g) * units : (5 + g) * units] for g in range(4)]
    sigmoid = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    h = np.zeros((x.shape[0], units))
    c = np.zeros((x.shape[0], units))
    outputs = []
    for t in range(x.shape[1]):
        pre = [x[:, t] @ W[g].T + h @ R[g].T + bw[g] + br[g] for g in range(4)]
        i, f, o = sigmoid(pre[0]), sigmoid(pre[1]), sigmoid(pre[3])
        c = f * c + i * np.tanh(pre[2])
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def cpu_cudnn_lstm_class():
    """A class named ``CuDNNLSTM`` (same Keras auto-names and variables) running on CPU."""
    import tensorflow as tf
    from tensorflow.compat.v1.keras.layers import CuDNNLSTM as UpstreamCuDNNLSTM

    class CuDNNLSTM(UpstreamCuDNNLSTM):
        def _process_batch(self, inputs, initial_state):
            kernel, recurrent, bias = cudnn_to_standard(
                self.kernel, self.recurrent_kernel, self.bias
            )
            units = self.units

            def step(state, x_t):
                h, c = state
                z = tf.matmul(x_t, kernel) + tf.matmul(h, recurrent) + bias
                i = tf.sigmoid(z[:, :units])
                f = tf.sigmoid(z[:, units : 2 * units])
                g = tf.tanh(z[:, 2 * units : 3 * units])
                o = tf.sigmoid(z[:, 3 * units :])
                c = f * c + i * g
                return (o * tf.tanh(c), c)

            time_major = inputs if self.time_major else tf.transpose(inputs, (1, 0, 2))
            h_seq, c_seq = tf.scan(step, time_major, initializer=tuple(initial_state))
            if not self.return_sequences:
                output = h_seq[-1]
            elif self.time_major:
                output = h_seq
            else:
                output = tf.transpose(h_seq, (1, 0, 2))
            return output, [h_seq[-1], c_seq[-1]]

    return CuDNNLSTM


@contextmanager
def cpu_blstm() -> Iterator[None]:
    import spleeter.model.functions.blstm as blstm_module

    original = blstm_module.CuDNNLSTM
    blstm_module.CuDNNLSTM = cpu_cudnn_lstm_class()
    try:
        yield
    finally:
        blstm_module.CuDNNLSTM = original


def verify_lstm_mapping() -> dict:
    """Check the CuDNN -> standard mapping three ways (see README)."""
    import tensorflow as tf
    from keras.saving.legacy.hdf5_format import _convert_rnn_weights

    rng = np.random.RandomState(SEED + 1)
    n_inputs, units, batch, steps = 12, 5, 3, 9
    kernel = rng.uniform(-0.6, 0.6, (n_inputs, 4 * units)).astype(np.float32)
    recurrent = rng.uniform(-0.6, 0.6, (units, 4 * units)).astype(np.float32)
    bias = rng.uniform(-0.5, 0.5, (8 * units,)).astype(np.float32)
    x = rng.uniform(-1, 1, (batch, steps, n_inputs)).astype(np.float32)
    reference = cudnn_lstm_reference(
        x.astype(np.float64),
        kernel.astype(np.float64),
        recurrent.astype(np.float64),
        bias.astype(np.float64),
    )
    report = {}
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        # (1) our mapping == Keras' own CuDNNLSTM -> LSTM weight converter (the one its
        #     GPU test suite validates by comparing predictions of both layers).
        ours = sess.run(cudnn_to_standard(kernel, recurrent, bias))
        lstm = tf.keras.layers.LSTM(units, return_sequences=True)
        lstm.build((None, steps, n_inputs))
        keras_converted = _convert_rnn_weights(lstm, [kernel, recurrent, bias])
        report["matches_keras_converter"] = all(
            np.array_equal(a, b) for a, b in zip(ours, keras_converted, strict=True)
        )
        # (2) standard Keras LSTM (sigmoid/tanh) with mapped weights == numpy cuDNN reference.
        x_in = tf.constant(x)
        out_lstm = lstm(x_in)
        sess.run(tf.compat.v1.global_variables_initializer())
        lstm.set_weights(list(ours))
        # (3) the CPU CuDNNLSTM substitute used for the golden output == reference.
        cpu_layer = cpu_cudnn_lstm_class()(units, return_sequences=True)
        out_cpu = cpu_layer(x_in)
        sess.run(tf.compat.v1.variables_initializer(cpu_layer.weights))
        cpu_layer.set_weights([kernel, recurrent, bias])
        a, b = sess.run([out_lstm, out_cpu])
        report["keras_lstm_vs_reference_max_abs"] = float(np.abs(a - reference).max())
        report["cpu_substitute_vs_reference_max_abs"] = float(np.abs(b - reference).max())
        # A naive mapping (kernels as-is, only the biases summed) is measurably different.
        lstm.set_weights([kernel, recurrent, bias[: 4 * units] + bias[4 * units :]])
        naive = sess.run(out_lstm)
        report["naive_mapping_vs_reference_max_abs"] = float(np.abs(naive - reference).max())
    report["cudnn_runs_here"] = cudnn_runs()
    assert report["matches_keras_converter"], report
    assert report["keras_lstm_vs_reference_max_abs"] < 1e-5, report
    assert report["cpu_substitute_vs_reference_max_abs"] < 1e-5, report
    assert report["naive_mapping_vs_reference_max_abs"] > 1e-2, report
    return report


def cudnn_runs() -> bool:
    """Whether the real CuDNNLSTM can run here (needs a GPU kernel for CudnnRNNV2)."""
    import tensorflow as tf

    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        layer = tf.compat.v1.keras.layers.CuDNNLSTM(3, return_sequences=True)
        output = layer(tf.ones((1, 4, 2)))
        try:  # the session places the whole graph: even the initializer fails on CPU
            sess.run(tf.compat.v1.global_variables_initializer())
            sess.run(output)
        except tf.errors.InvalidArgumentError as error:
            lines = [line for line in str(error).splitlines() if "No OpKernel" in line]
            log("real CuDNNLSTM on this machine: " + (lines or ["failed"])[0][:160])
            return False
    return True


def stage_blstm() -> dict:
    import tensorflow as tf

    import_upstream()
    from spleeter.model.functions.blstm import blstm
    from spleeter.utils.configuration import load_configuration

    report = verify_lstm_mapping()
    log(f"LSTM mapping checks: {report}")
    params = load_configuration(str(CONFIGS / "blstm_2stems.json"))
    rng = np.random.RandomState(SEED)
    # 1. Upstream's own model function defines the variables (names, shapes, order).
    with tf.Graph().as_default():
        x = tf.compat.v1.placeholder(tf.float32, (None, params["T"], params["F"], 2))
        blstm(x, params["instrument_list"], params["model"]["params"])
        tf.compat.v1.train.get_or_create_global_step()
        specs = [
            (v.op.name, tuple(v.shape.as_list()), v.dtype.base_dtype)
            for v in tf.compat.v1.global_variables()
        ]
    # 2. That graph holds CudnnRNNV2 nodes, which a CPU session refuses to place even
    #    for the initializer: recreate the same variables alone and fill them with
    #    distinct seeded values (he_uniform(seed=50) would make every same-shaped kernel
    #    identical: forward == backward, vocals == accompaniment).
    shapes = []
    with tf.Graph().as_default():
        variables = []
        for name, shape, dtype in specs:
            if name == "global_step":
                value = np.int64(0)
            else:
                leaf = name.split("/")[-1]
                if leaf == "bias" and name.startswith("time_distributed"):
                    value = rng.uniform(0.0, 0.2, shape)  # dense output layer (ReLU)
                elif leaf == "bias":
                    value = rng.uniform(-0.5, 0.5, shape)
                else:
                    value = rng.uniform(-1, 1, shape) * np.sqrt(3.0 / shape[0])
                value = value.astype(dtype.as_numpy_dtype)
                shapes.append((name, list(shape)))
            variables.append(tf.compat.v1.Variable(value, name=name, dtype=dtype))
        assert [v.op.name for v in variables] == [name for name, _, _ in specs]
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            save_checkpoint(sess, variables, MODELS / "blstm_2stems", 0)
    for name, shape in shapes:
        log(f"  {name} {shape}")
    report["variables"] = shapes
    return report


# --------------------------------------------------------------------------------------
# Stage: golden outputs
# --------------------------------------------------------------------------------------


def make_input(excerpt: Path) -> np.ndarray:
    mixture = ffmpeg_decode(excerpt, STREAMS["mixture"])
    segment = mixture[INPUT_OFFSET : INPUT_OFFSET + INPUT_LENGTH].astype(np.float64)
    quantised = np.clip(np.round(segment * 32768.0), -32768, 32767).astype(np.int16)
    ffmpeg_write(INPUT_FLAC, quantised, "flac")
    assert np.array_equal(ffmpeg_decode(INPUT_FLAC, fmt="s16le"), quantised)
    return quantised.astype(np.float32) / np.float32(32768.0)


def transform(waveform: np.ndarray, kind: str) -> np.ndarray:
    if kind == "none":
        return waveform
    if kind == "mono":
        return np.ascontiguousarray(waveform[:, :1])
    if kind == "3ch":
        return np.concatenate([waveform, waveform[:, :1] - waveform[:, 1:2]], axis=1)
    raise ValueError(kind)


def window_start(T: int) -> int:
    """Full-rate window centred on the first T-block boundary (output sample index)."""
    return T * 1024 - 4096 - WINDOW_LENGTH // 2


def stage_golden(excerpt: Path, work: Path) -> dict:
    os.environ["MODEL_PATH"] = str(MODELS)
    os.environ["GITHUB_HOST"] = "http://127.0.0.1:9"  # never download anything
    import_upstream()
    from spleeter.audio.adapter import AudioAdapter
    from spleeter.separator import Separator
    from spleeter.utils.configuration import load_configuration

    waveform = make_input(excerpt)
    loaded, rate = AudioAdapter.default().load(str(INPUT_FLAC), sample_rate=SAMPLE_RATE)
    adapter_exact = bool(np.array_equal(loaded, waveform))
    log(f"input {waveform.shape}, upstream adapter load identical: {adapter_exact}")
    assert adapter_exact
    GOLDEN.mkdir(parents=True, exist_ok=True)
    results = {}
    for case, config_name, kind, mwf in CASES:
        config_path = CONFIGS / f"{config_name}.json"
        params = load_configuration(str(config_path))
        start = time.time()
        separator = Separator(str(config_path), MWF=mwf, multiprocess=False)
        context = cpu_blstm() if params["model"]["type"] == "blstm.blstm" else _null()
        with context:
            outputs = separator.separate(transform(waveform, kind))
        elapsed = time.time() - start
        assert list(outputs) == params["instrument_list"], list(outputs)
        first = window_start(params["T"])
        arrays = {
            "length": np.int64(INPUT_LENGTH),
            "stride": np.int64(STRIDE),
            "window_start": np.int64(first),
        }
        for instrument, data in outputs.items():
            assert data.shape == (INPUT_LENGTH, 2) and data.dtype == np.float32, data.shape
            assert np.all(np.isfinite(data)) and np.abs(data).max() > 1e-4, instrument
            arrays[f"{instrument}__strided"] = data[::STRIDE]
            arrays[f"{instrument}__window"] = data[first : first + WINDOW_LENGTH]
            arrays[f"{instrument}__sum"] = data.astype(np.float64).sum(axis=0)
            arrays[f"{instrument}__sumsq"] = (data.astype(np.float64) ** 2).sum(axis=0)
        np.savez_compressed(GOLDEN / f"{case}.npz", **arrays)
        if case == "2stems":
            # Full-rate copy for the CLI stage's cross-check (not a fixture).
            np.save(
                work / "golden_2stems_full.npy",
                np.stack([outputs[i] for i in params["instrument_list"]]),
            )
        rms = {i: float(np.sqrt((d.astype(np.float64) ** 2).mean())) for i, d in outputs.items()}
        log(f"golden {case}: {elapsed:.1f} s, rms {rms}")
        results[case] = {"seconds": round(elapsed, 1), "rms": rms}
    return results


@contextmanager
def _null() -> Iterator[None]:
    yield


# --------------------------------------------------------------------------------------
# Stage: cli (16-bit WAV through upstream's command line)
# --------------------------------------------------------------------------------------


def stage_cli(work: Path) -> dict:
    out = work / "cli_out"
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, MODEL_PATH=str(MODELS), GITHUB_HOST="http://127.0.0.1:9")
    env.pop("PYTHONPATH", None)
    command = [
        str(UPSTREAM_BIN / "spleeter"),
        "separate",
        "-p",
        str(CONFIGS / "unet_2stems.json"),
        "-o",
        str(out),
        str(INPUT_FLAC),
    ]
    log("cli: " + " ".join(command))
    subprocess.run(command, cwd=work, env=env, check=True)
    target = CLI_DIR / "unet_2stems"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    full = np.load(work / "golden_2stems_full.npy")
    report = {}
    for k, instrument in enumerate(TRAINED["unet_2stems"]["instrument_list"]):
        wav = out / INPUT_FLAC.stem / f"{instrument}.wav"
        probe = subprocess.run([*FFPROBE_CODEC, str(wav)], capture_output=True, text=True)
        assert probe.stdout.strip() == "pcm_s16le", probe.stdout
        flac = target / f"{instrument}.flac"
        flac_from_wav(wav, flac)
        pcm = ffmpeg_decode(wav, fmt="s16le")
        assert np.array_equal(pcm, ffmpeg_decode(flac, fmt="s16le"))  # lossless copy
        lsb = np.abs(pcm.astype(np.float64) - full[k].astype(np.float64) * 32768.0).max()
        report[instrument] = {
            "file": str(flac.relative_to(FIXTURES)),
            "codec": "pcm_s16le",
            "max_abs_diff_vs_golden_float_lsb": round(float(lsb), 3),
        }
        log(f"cli {instrument}: max |wav - golden*32768| = {lsb:.3f} LSB")
    return report


# --------------------------------------------------------------------------------------
# Stage: manifest
# --------------------------------------------------------------------------------------


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True).stdout.splitlines()[0]
    except Exception:  # noqa: BLE001
        return "unknown"


def stage_manifest(extra: dict) -> None:
    from importlib.metadata import version

    configs = all_configs()
    model_of = {name: c["model_dir"] for name, c in configs.items()}
    cases = []
    for case, config_name, kind, mwf in CASES:
        config = configs[config_name]
        cases.append(
            {
                "name": case,
                "config": f"configs/{config_name}.json",
                "checkpoint_dir": f"models/{model_of[config_name]}",
                "model_type": config["model"]["type"],
                "instruments": config["instrument_list"],
                "input_transform": kind,
                "mwf": mwf,
                "npz": f"golden/{case}.npz",
                "stride": STRIDE,
                "window_start": window_start(config["T"]),
                "window_length": WINDOW_LENGTH,
                "length": INPUT_LENGTH,
                "cpu_equivalent": config["model"]["type"] == "blstm.blstm",
            }
        )
    previous = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    manifest = {
        "description": "Golden outputs of upstream Spleeter 2.4.2 on tiny trained models; "
        "see tools/upstream_fixtures/README.md",
        "generator": "tools/upstream_fixtures/make_fixtures.py",
        "upstream": {
            "spleeter": version("spleeter"),
            "tensorflow": version("tensorflow"),
            "numpy": version("numpy"),
            "norbert": version("norbert"),
            "ffmpeg": _version(["ffmpeg", "-version"]).split(" Copyright")[0],
        },
        "model_path": "models",
        "input": {
            "file": "input.flac",
            "source": "The Easton Ellises - Falcon 69.stem.mp4 (stempeg wheel), stream 0 "
            "(mixture), decoded by ffmpeg to float, samples [44100, 176400) quantised to int16",
            "offset_samples": INPUT_OFFSET,
            "samples": INPUT_LENGTH,
            "sample_rate": SAMPLE_RATE,
            "channels": 2,
            "float32": "int16 / 32768 (what soundfile returns for dtype float32)",
            "sha256": hashlib.sha256(INPUT_FLAC.read_bytes()).hexdigest(),
        },
        "npz_layout": {
            "length": "number of output samples (== input samples)",
            "stride": "k: <instrument>__strided == output[::k]",
            "window_start": "<instrument>__window == output[window_start:window_start+"
            "window_length] (full rate, straddles the first T-block boundary)",
            "<instrument>__strided": "float32 (ceil(length/k), 2)",
            "<instrument>__window": "float32 (window_length, 2)",
            "<instrument>__sum": "float64 (2,) per-channel sum over the full output",
            "<instrument>__sumsq": "float64 (2,) per-channel sum of squares over the full output",
        },
        "input_transforms": INPUT_TRANSFORMS,
        "cases": cases,
    }
    for key in ("cli", "lstm_mapping_checks", "train_seconds", "golden_seconds"):
        manifest[key] = previous.get(key)
    manifest.update({k: v for k, v in extra.items() if v is not None})
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    size = subprocess.run(["du", "-sh", str(FIXTURES)], capture_output=True, text=True).stdout
    log(f"manifest written; fixture size: {size.strip()}")


# --------------------------------------------------------------------------------------


STAGES = ["data", "train", "stats", "blstm", "golden", "cli", "manifest"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES)
    )
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="scratch directory")
    parser.add_argument(
        "--excerpt",
        type=Path,
        default=DEFAULT_EXCERPT,
        help="MUSDB18 .stem.mp4 excerpt from the stempeg wheel",
    )
    args = parser.parse_args()
    stages = [s for s in STAGES if s in args.stages.split(",")]
    np.random.seed(SEED)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args.work.mkdir(parents=True, exist_ok=True)
    write_configs()
    extra: dict = {}
    for stage in stages:
        start = time.time()
        log(f"stage {stage}")
        if stage == "data":
            stage_data(args.work, args.excerpt)
        elif stage == "train":
            extra["train_seconds"] = {k: round(v) for k, v in stage_train(args.work).items()}
        elif stage == "stats":
            stage_stats(args.work)
        elif stage == "blstm":
            report = stage_blstm()
            report.pop("variables")
            extra["lstm_mapping_checks"] = report
        elif stage == "golden":
            golden = stage_golden(args.excerpt, args.work)
            extra["golden_seconds"] = {k: v["seconds"] for k, v in golden.items()}
        elif stage == "cli":
            extra["cli"] = {
                "command": "MODEL_PATH=models spleeter separate -p configs/unet_2stems.json "
                "-o OUT input.flac",
                "note": "upstream writes 16-bit PCM WAV; stored here losslessly as FLAC",
                "stems": stage_cli(args.work),
            }
        elif stage == "manifest":
            stage_manifest(extra)
        log(f"stage {stage} done in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()

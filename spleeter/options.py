"""Command-line options, with upstream Spleeter's names, spellings and defaults.

Options use underscores (``--output_path``, ``--filename_format``, ``--params_filename``), as
upstream's did; every upstream command line keeps working.
"""

import tempfile
from enum import StrEnum
from os.path import join

import typer

from .audio import ClipMode, Codec
from .evaluation import MetricsChoice

DEFAULT_ADAPTER = "spleeter.audio.ffmpeg.FFMPEGProcessAudioAdapter"
DEFAULT_OUTPUT_PATH = join(tempfile.gettempdir(), "separated_audio")

AudioInputArgument: list[str] = typer.Argument(
    ..., help="Audio files to separate; directories and glob patterns are expanded"
)

AudioInputOption: str | None = typer.Option(
    None, "--inputs", "-i", help="(Removed) give the audio files as arguments instead"
)

AudioAdapterOption: str = typer.Option(
    DEFAULT_ADAPTER,
    "--adapter",
    "-a",
    help="Audio adapter class (dotted path) for reading and writing audio",
)

AudioOutputOption: str = typer.Option(
    DEFAULT_OUTPUT_PATH, "--output_path", "-o", help="Directory the separated files are written to"
)

AudioOffsetOption: float = typer.Option(
    0.0, "--offset", "-s", help="Start separating this many seconds into the file"
)

AudioDurationOption: float | None = typer.Option(
    None,
    "--duration",
    "-d",
    help="Separate at most this many seconds from the offset (default: to the end of the file)",
)

AudioCodecOption: Codec = typer.Option(
    Codec.WAV, "--codec", "-c", help="Codec (and file extension) of the separated files"
)

AudioBitrateOption: str = typer.Option(
    "128k", "--bitrate", "-b", help="Bitrate of the separated files (lossy codecs)"
)

FilenameFormatOption: str = typer.Option(
    "{filename}/{instrument}.{codec}",
    "--filename_format",
    "-f",
    help=(
        "Path of each separated file under the output directory; placeholders: {filename}, "
        "{foldername}, {instrument} and {codec}"
    ),
)

ModelParametersOption: str = typer.Option(
    "spleeter:2stems",
    "--params_filename",
    "-p",
    help=(
        "Model configuration: spleeter:2stems, 4stems, 5stems (also -16kHz, and 2stems-ssl, "
        "4stems-ssl) or a JSON file"
    ),
)

MWFOption: bool = typer.Option(
    False, "--mwf", help="Use a multichannel Wiener filter instead of ratio masks"
)

MUSDBDirectoryOption: str = typer.Option(..., "--mus_dir", help="Root of a MUSDB-layout dataset")

TrainingDataDirectoryOption: str = typer.Option(
    ..., "--data", "-d", help="Root folder of the training audio (CSV paths are relative to it)"
)

EngineOption: str = typer.Option(
    "auto",
    "--engine",
    "-e",
    help=(
        "Inference engine: auto (ONNX Runtime; U-Nets are converted from their checkpoint on "
        "first use in seconds, other models run on TensorFlow until exported), onnx (ONNX "
        "Runtime, converting any model once), openvino (OpenVINO on the CPU) or tensorflow"
    ),
)

PrecisionOption: str = typer.Option(
    "float32",
    "--precision",
    help=(
        "Arithmetic of the network: float32 (default, upstream's numbers), bfloat16 (OpenVINO "
        "on CPUs with AVX-512 BF16 or AMX), float16 (ONNX Runtime on CUDA) or int8 (quantised "
        "ONNX model, a quarter of the size); see docs/performance.md for speed and SDR change"
    ),
)

DeviceOption: str = typer.Option(
    "auto", "--device", help="Where the network runs: auto, cpu or cuda (an error if unavailable)"
)

RecursiveOption: bool = typer.Option(
    False, "--recursive", "-r", help="Take audio files from subdirectories of input directories too"
)

SkipExistingOption: bool = typer.Option(
    False, "--skip-existing", help="Skip inputs whose separated files all exist already"
)

WorkersOption: int | None = typer.Option(
    None,
    "--workers",
    min=1,
    help=(
        "Separate on a local cluster of this many worker processes, each with its own model "
        "(resumable: see docs/scale-out.md)"
    ),
)

SchedulerOption: str | None = typer.Option(
    None,
    "--scheduler",
    help="Separate on an existing cluster: a Dask scheduler (tcp://host:8786) or a Ray address",
)

ClusterOption: str | None = typer.Option(
    None,
    "--cluster",
    help="Cluster engine for --workers/--scheduler: dask (the default) or ray",
)

ExportOutputOption: str | None = typer.Option(
    None,
    "--output_path",
    "-o",
    help=(
        "Directory to write model.onnx and config.json into (default: model.onnx next to the "
        "checkpoint, where --engine auto finds it)"
    ),
)

ExportForceOption: bool = typer.Option(
    False, "--force", help="Convert again even when the export is current"
)

OpsetOption: int = typer.Option(17, "--opset", min=17, help="ONNX opset version (>= 17)")

VerboseOption: bool = typer.Option(False, "--verbose", help="Show debug logs")

QuietOption: bool = typer.Option(
    False, "--quiet", "-q", help="Only print warnings and errors (no progress bar)"
)


def version_callback(value: bool) -> None:
    """Print ``Spleeter Version: <version>`` and exit (``spleeter --version``)."""
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version("spleeter")
        except PackageNotFoundError:
            installed = "unknown (not installed)"
        typer.echo(f"Spleeter Version: {installed}")
        raise typer.Exit()


VersionOption: bool = typer.Option(
    False, "--version", callback=version_callback, is_eager=True, help="Print the version and exit"
)


EvaluationMetricsOption: MetricsChoice = typer.Option(
    MetricsChoice.museval,
    "--metrics",
    help=(
        "Scores to compute: museval (BSS Eval v4, comparable with published tables, upstream's), "
        "fast (fast_bss_eval SDR/SIR/SAR and SI-SDR) or both"
    ),
)

EvaluationJobsOption: int | None = typer.Option(
    None, "--jobs", "-j", min=1, help="Tracks scored in parallel (default: number of CPU cores)"
)

EvaluationPlotsOption: bool = typer.Option(
    True, "--plots/--no-plots", help="Draw the SDR box plots and one track's spectrograms (PNG)"
)

EvaluationCompareOption: str | None = typer.Option(
    None, "--compare", help="summary.json of an earlier evaluation to print differences against"
)

TrainingMixedPrecisionOption: bool = typer.Option(
    False,
    "--mixed-precision",
    help=(
        "Train with float32 weights and a lower-precision compute type: float16 with loss "
        "scaling on a GPU, bfloat16 on a CPU (fast where it has AVX-512 BF16 or AMX)"
    ),
)


class MixedPrecisionChoice(StrEnum):
    """The compute type of ``--mixed-precision``: ``spleeter.training.precision.CHOICES``,
    spelled out here because importing ``spleeter.training`` would slow every command's start."""

    auto = "auto"
    float16 = "float16"
    bfloat16 = "bfloat16"


TrainingMixedPrecisionDtypeOption: MixedPrecisionChoice | None = typer.Option(
    None,
    "--mixed-precision-dtype",
    help="The compute type of mixed precision, chosen by hand (implies --mixed-precision)",
)

TrainingInitFromOption: str | None = typer.Option(
    None,
    "--init-from",
    help=(
        "Fine-tune: start from the weights of this model directory (upstream format; a name "
        "such as 4stems is resolved under MODEL_PATH). Ignored when resuming"
    ),
)

TrainingMaxStepsOption: int | None = typer.Option(
    None, "--max-steps", min=0, help="Train up to this global step (overrides train_max_steps)"
)


class StrategyChoice(StrEnum):
    """What ``spleeter train --strategy`` distributes training with
    (:mod:`spleeter.training.strategies`)."""

    auto = "auto"
    default = "default"
    mirrored = "mirrored"
    multiworker = "multiworker"


TrainingStrategyOption: StrategyChoice = typer.Option(
    StrategyChoice.auto,
    "--strategy",
    help=(
        "tf.distribute strategy: auto (mirrored over several GPUs, else one device), default "
        "(one device), mirrored (all GPUs, else all logical CPU devices), multiworker (the "
        "machines of the TF_CONFIG environment variable; only the chief writes model_dir). "
        "batch_size is the global batch, split across replicas"
    ),
)

TrainingSeedOption: int | None = typer.Option(
    None, "--seed", help="Random seed of the data order, crops and dropout (overrides random_seed)"
)

PretrainParametersOption: str = typer.Option(
    "spleeter:4stems-ssl",
    "--params_filename",
    "-p",
    help=(
        "Configuration with an SSL encoder (model.params.encoder, encoder_dir and a pretrain "
        "section): spleeter:2stems-ssl, spleeter:4stems-ssl or a JSON file"
    ),
)

PretrainDataOption: str | None = typer.Option(
    None,
    "--data",
    "-d",
    help=(
        "Unlabelled audio: a directory (every audio file below it), or with --csv the directory "
        "the CSV's paths are relative to. Not needed to --export an encoder already pretrained"
    ),
)

PretrainCsvOption: str | None = typer.Option(
    None,
    "--csv",
    help="Take the audio from the <mix_name>_path column of this upstream-format dataset CSV",
)

PretrainIterationsOption: int | None = typer.Option(
    None,
    "--iterations",
    min=1,
    help=(
        "Number of HuBERT iterations (overrides the length of pretrain.iterations; extra ones "
        "repeat the last one's settings, re-clustering the previous encoder's layer)"
    ),
)

PretrainMaxStepsOption: int | None = typer.Option(
    None,
    "--max-steps",
    min=0,
    help="Train each iteration up to this step (overrides every iteration's steps)",
)

PretrainExportOption: bool = typer.Option(
    False,
    "--export",
    help="Also write encoder.onnx (the encoder alone, for ONNX Runtime) into encoder_dir",
)

# Output choice, encoding and test-time augmentation of spleeter separate (issue 17).

StemsOption: str | None = typer.Option(
    None,
    "--stems",
    help="Write only these sources, comma-separated (e.g. vocals,drums; default: all)",
)

TwoStemsOption: str | None = typer.Option(
    None,
    "--two-stems",
    help="Write this source and no_<source>, the sum of all the others (as Demucs)",
)

Int24Option: bool = typer.Option(
    False, "--int24", help="Write 24-bit WAV (or FLAC) instead of 16-bit"
)

Float32Option: bool = typer.Option(
    False, "--float32", help="Write 32-bit float WAV instead of 16-bit"
)

OutputSampleRateOption: int | None = typer.Option(
    None,
    "--sample-rate",
    help="Sample rate of the written files in Hz (default: the model's, 44100)",
)

ClipModeOption: ClipMode = typer.Option(
    ClipMode.clamp,
    "--clip-mode",
    help=(
        "Samples past full scale: clamp (clip them, as upstream's 16-bit output did; a warning "
        "counts them), rescale (scale the stem down to fit, as Demucs) or none"
    ),
)

ShiftsOption: int = typer.Option(
    1,
    "--shifts",
    min=1,
    help=(
        "Average this many separations of the input shifted at random by up to 0.5 s "
        "(test-time augmentation; costs N times the time; 1: none)"
    ),
)

OverlapOption: float = typer.Option(
    0.0,
    "--overlap",
    min=0.0,
    max=0.95,
    help=(
        "Also separate with the network's blocks of T frames moved and crossfade them: "
        "ceil(1/(1-overlap)) block grids, each one more separation (0: upstream's one grid)"
    ),
)

# -- the cluster family (spleeter separate) ----------------------------------------------------

ClustererOption: str | None = typer.Option(
    None,
    "--clusterer",
    help="Cluster models: kmeans, agglomerative or dbscan (default: the configuration's)",
)

ClustersOption: int | None = typer.Option(
    None,
    "--clusters",
    help="Cluster models: the number of sources K; 0 estimates it per track (silhouette)",
)

SplitOption: list[str] | None = typer.Option(
    None,
    "--split",
    help="Split a stem further by clustering, e.g. --split other=3 (other_1..other_3); "
    "STEM=0 estimates the number; repeatable",
)

SplitModelOption: str = typer.Option(
    "spleeter:4stems-cluster",
    "--split-model",
    help="The cluster model (autoencoder) --split uses",
)

"""The ``spleeter`` command line (``python -m spleeter`` does the same).

Commands import TensorFlow and the audio stack only when they run, so ``--help`` and
``--version`` answer at once.
"""

import sys

import typer

from . import SpleeterError
from .audio import ClipMode, Codec
from .cli_errors import EXIT_USER_ERROR, log_error, user_errors
from .evaluation import (  # noqa: F401 (upstream's names, importable from here)
    EVALUATION_AUDIO_DIRECTORY,
    EVALUATION_INSTRUMENTS,
    EVALUATION_METRICS,
    EVALUATION_METRICS_DIRECTORY,
    EVALUATION_MIXTURE,
    EVALUATION_SPLIT,
    MetricsChoice,
)
from .options import (  # issue 17: output choice, encoding, test-time augmentation
    AudioAdapterOption,
    AudioBitrateOption,
    AudioCodecOption,
    AudioDurationOption,
    AudioInputArgument,
    AudioInputOption,
    AudioOffsetOption,
    AudioOutputOption,
    ClipModeOption,
    ClustererOption,
    ClusterOption,
    ClustersOption,
    DeviceOption,
    EngineOption,
    EvaluationCompareOption,
    EvaluationJobsOption,
    EvaluationMetricsOption,
    EvaluationPlotsOption,
    ExportForceOption,
    ExportOutputOption,
    FilenameFormatOption,
    Float32Option,
    Int24Option,
    MixedPrecisionChoice,
    ModelParametersOption,
    MUSDBDirectoryOption,
    MWFOption,
    OpsetOption,
    OutputSampleRateOption,
    OverlapOption,
    PrecisionOption,
    PretrainCsvOption,
    PretrainDataOption,
    PretrainExportOption,
    PretrainIterationsOption,
    PretrainMaxStepsOption,
    PretrainParametersOption,
    QuietOption,
    RecursiveOption,
    SchedulerOption,
    ShiftsOption,
    SkipExistingOption,
    SplitModelOption,
    SplitOption,
    StemsOption,
    StrategyChoice,
    TrainingDataDirectoryOption,
    TrainingInitFromOption,
    TrainingMaxStepsOption,
    TrainingMixedPrecisionDtypeOption,
    TrainingMixedPrecisionOption,
    TrainingSeedOption,
    TrainingStrategyOption,
    TwoStemsOption,
    VerboseOption,
    VersionOption,
    WorkersOption,
)
from .utils.logging import configure_logger, logger

EXIT_REMOVED_OPTION = 20

spleeter: typer.Typer = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    help="Music source separation: split a song into vocals, drums, bass, piano and other.",
)
"""The command-line application."""


def _plain_flags_in_help() -> None:
    """Show plain flags (``--mwf``, ``--quiet``) without a ``<bool>`` value in ``--help``:
    they take none."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_spleeter_flags", False):
        return
    original = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx):  # type: ignore[no-untyped-def]
        if self.is_flag and not self.count:
            return None
        return original(self, ctx)

    display_type_rich._spleeter_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_plain_flags_in_help()

config: typer.Typer = typer.Typer(
    no_args_is_help=True, help="Bundled model configurations: list them, print one."
)
spleeter.add_typer(config, name="config")


@config.command("list")
def config_list() -> None:
    """Print the names usable as -p spleeter:NAME."""
    from .utils.configuration import embedded_configuration_names

    for name in embedded_configuration_names():
        typer.echo(f"spleeter:{name}")


@config.command("show", no_args_is_help=True)
def config_show(
    descriptor: str = typer.Argument(
        ..., help="spleeter:NAME, a JSON file or a model folder (its model.json)"
    ),
) -> None:
    """Print a configuration as JSON, to start a custom one from:
    spleeter config show spleeter:4stems > my.json"""
    with user_errors():
        import json

        from .utils.configuration import EMBEDDED_CONFIGURATION_PREFIX, load_configuration

        params = load_configuration(descriptor)  # checks it exists and parses
        if descriptor.startswith(EMBEDDED_CONFIGURATION_PREFIX):
            from importlib import resources as importlib_resources

            from . import resources

            name = descriptor[len(EMBEDDED_CONFIGURATION_PREFIX) :]
            text = (importlib_resources.files(resources) / f"{name}.json").read_text("utf-8")
            typer.echo(text, nl=not text.endswith("\n"))
            return
        typer.echo(json.dumps(params, indent=2))


@spleeter.callback()
def default(version: bool = VersionOption) -> None:
    """Music source separation: split a song into vocals, drums, bass, piano and other."""


@spleeter.command(no_args_is_help=True)
def train(
    adapter: str = AudioAdapterOption,
    data: str = TrainingDataDirectoryOption,
    params_filename: str = ModelParametersOption,
    verbose: bool = VerboseOption,
    quiet: bool = QuietOption,
    mixed_precision: bool = TrainingMixedPrecisionOption,
    mixed_precision_dtype: MixedPrecisionChoice | None = TrainingMixedPrecisionDtypeOption,
    init_from: str | None = TrainingInitFromOption,
    max_steps: int | None = TrainingMaxStepsOption,
    seed: int | None = TrainingSeedOption,
    strategy: StrategyChoice = TrainingStrategyOption,
) -> None:
    """Train a source separation model (resumes from the latest checkpoint in model_dir)."""
    configure_logger(verbose, quiet)
    with user_errors():
        from .audio.adapter import AudioAdapter
        from .model.checks import checked_configuration
        from .training import run_training

        audio_adapter = AudioAdapter.get(adapter)
        params = checked_configuration(params_filename, "train")
        run_training(
            params,
            data,
            audio_adapter,
            max_steps=max_steps,
            seed=seed,
            mixed_precision=mixed_precision_dtype or mixed_precision,
            init_from=init_from,
            quiet=quiet,
            verbose=verbose,
            strategy=str(strategy),
        )


@spleeter.command(no_args_is_help=True)
def pretrain(
    adapter: str = AudioAdapterOption,
    data: str | None = PretrainDataOption,
    csv: str | None = PretrainCsvOption,
    params_filename: str = PretrainParametersOption,
    iterations: int | None = PretrainIterationsOption,
    max_steps: int | None = PretrainMaxStepsOption,
    seed: int | None = TrainingSeedOption,
    mixed_precision: bool = TrainingMixedPrecisionOption,
    mixed_precision_dtype: MixedPrecisionChoice | None = TrainingMixedPrecisionDtypeOption,
    export: bool = PretrainExportOption,
    verbose: bool = VerboseOption,
    quiet: bool = QuietOption,
) -> None:
    """Pretrain an SSL encoder on unlabelled audio (HuBERT-style masked prediction of units).

    The encoder goes to the configuration's model.params.encoder_dir (a run resumes from it),
    where spleeter train finds it for the fused separator. See docs/ssl.md.
    """
    configure_logger(verbose, quiet)
    with user_errors():
        from .audio.adapter import AudioAdapter
        from .ssl import run_pretraining
        from .utils.configuration import load_configuration

        audio_adapter = AudioAdapter.get(adapter)
        params = load_configuration(params_filename)
        run_pretraining(
            params,
            data,
            audio_adapter,
            csv_path=csv,
            max_steps=max_steps,
            iterations=iterations,
            seed=seed,
            mixed_precision=mixed_precision_dtype or mixed_precision,
            export=export,
            quiet=quiet,
            verbose=verbose,
        )


@spleeter.command(no_args_is_help=True)
def separate(
    deprecated_files: str | None = AudioInputOption,
    files: list[str] = AudioInputArgument,
    adapter: str = AudioAdapterOption,
    bitrate: str = AudioBitrateOption,
    codec: Codec = AudioCodecOption,
    duration: float | None = AudioDurationOption,
    offset: float = AudioOffsetOption,
    output_path: str = AudioOutputOption,
    filename_format: str = FilenameFormatOption,
    params_filename: str = ModelParametersOption,
    mwf: bool = MWFOption,
    engine: str = EngineOption,
    device: str = DeviceOption,
    precision: str = PrecisionOption,
    recursive: bool = RecursiveOption,
    skip_existing: bool = SkipExistingOption,
    workers: int | None = WorkersOption,
    scheduler: str | None = SchedulerOption,
    cluster: str | None = ClusterOption,
    # issue 17: output choice, encoding, test-time augmentation
    stems: str | None = StemsOption,
    two_stems: str | None = TwoStemsOption,
    int24: bool = Int24Option,
    float32: bool = Float32Option,
    sample_rate: int | None = OutputSampleRateOption,
    clip_mode: ClipMode = ClipModeOption,
    shifts: int = ShiftsOption,
    overlap: float = OverlapOption,
    # end of issue 17's options
    # the cluster family
    clusterer: str | None = ClustererOption,
    clusters: int | None = ClustersOption,
    split: list[str] | None = SplitOption,
    split_model: str = SplitModelOption,
    verbose: bool = VerboseOption,
    quiet: bool = QuietOption,
) -> None:
    """Separate audio file(s) into one file per instrument (per cluster for cluster models)."""
    configure_logger(verbose, quiet)
    if deprecated_files is not None:
        logger.error(
            "-i option is not supported anymore, audio files must be supplied "
            "using input argument instead (see spleeter separate --help)"
        )
        raise typer.Exit(EXIT_REMOVED_OPTION)
    with user_errors():
        if offset < 0:
            raise SpleeterError(f"--offset must be >= 0 (got {offset})")
        if duration is not None and duration <= 0:
            raise SpleeterError(f"--duration must be > 0 (got {duration})")
        from .audio.adapter import AudioAdapter
        from .audio.encoding import OutputFormat, SampleFormat
        from .batch import separate_files
        from .inputs import expand_inputs
        from .separation.selection import StemSelection
        from .separation.shifts import grid_count
        from .separator import Separator

        if int24 and float32:
            raise SpleeterError("--int24 and --float32 cannot be combined: choose one")
        sample_format = SampleFormat.int24 if int24 else SampleFormat.float32 if float32 else None
        output_format = OutputFormat(sample_format, sample_rate, ClipMode(clip_mode))
        output_format.check(codec)
        selection = StemSelection.of(stems, two_stems)
        grid_count(overlap)
        audio_adapter = AudioAdapter.get(adapter)
        separator = Separator(
            params_filename,
            MWF=mwf,
            engine=engine,
            device=device,
            precision=precision,
            shifts=shifts,
            overlap=overlap,
            clusterer=clusterer,
            clusters=clusters,
            split=parse_split(split),
            split_model=split_model,
        )
        if (clusterer or clusters is not None or split) and (workers or scheduler or cluster):
            raise SpleeterError("--clusterer, --clusters and --split run in one process only")
        if separator.instruments:
            selection.outputs(separator.instruments)  # an unknown name fails before any work
        check_writable_directory(output_path)
        inputs, problems = expand_inputs(files, recursive)
        for problem in problems:
            logger.error(problem)
        if workers or scheduler or cluster:
            from .batch import Job, separate_catalogue

            job = Job(
                params_filename,
                output_path,
                filename_format,
                codec=codec,
                bitrate=bitrate,
                mwf=mwf,
                engine=engine,
                device=device,
                precision=precision,
                adapter=adapter,
                offset=offset,
                duration=duration,
                stems=selection.stems,
                two_stems=selection.two_stems,
                sample_format=None if sample_format is None else str(sample_format),
                sample_rate=sample_rate,
                clip_mode=str(clip_mode),
                shifts=shifts,
                overlap=overlap,
            )
            failures = len(problems) + separate_catalogue(
                job, inputs, cluster or "dask", workers, scheduler, show_progress=not quiet
            )
            if failures:
                raise typer.Exit(EXIT_USER_ERROR)
            return
        failures = len(problems) + separate_files(
            separator,
            audio_adapter,
            inputs,
            output_path,
            filename_format,
            codec,
            bitrate,
            offset=offset,
            duration=duration,
            skip_existing=skip_existing,
            show_progress=not quiet,
            selection=selection,
            output_format=output_format,
        )
        if failures:
            raise typer.Exit(EXIT_USER_ERROR)


@spleeter.command(no_args_is_help=True)
def evaluate(
    adapter: str = AudioAdapterOption,
    output_path: str = AudioOutputOption,
    params_filename: str = ModelParametersOption,
    mus_dir: str = MUSDBDirectoryOption,
    mwf: bool = MWFOption,
    metrics: MetricsChoice = EvaluationMetricsOption,
    jobs: int | None = EvaluationJobsOption,
    plots: bool = EvaluationPlotsOption,
    compare: str | None = EvaluationCompareOption,
    verbose: bool = VerboseOption,
    quiet: bool = QuietOption,
) -> dict:
    """Evaluate a model on the test set of a MUSDB-layout dataset.

    Separates every test track into OUTPUT_PATH/audio, writes museval-format scores per track
    under OUTPUT_PATH/metrics and prints the median over frames, then over tracks.
    """
    # called as a Python function (as upstream's tests do), options left out keep their defaults
    metrics, jobs, plots, compare, quiet = (
        value.default if isinstance(value, typer.models.ParameterInfo) else value
        for value in (metrics, jobs, plots, compare, quiet)
    )
    configure_logger(verbose, quiet)
    choice = MetricsChoice(metrics)
    if not check_evaluation_extra(choice, plots):
        raise typer.Exit(10)
    with user_errors():
        from .evaluation.pipeline import run_evaluation
        from .model.checks import checked_configuration

        checked_configuration(params_filename, "separate")
        check_writable_directory(output_path)
        return run_evaluation(
            params_filename,
            mus_dir,
            output_path,
            adapter=adapter,
            mwf=mwf,
            metrics=choice,
            jobs=jobs,
            plots=plots,
            compare_with=compare,
        )


@spleeter.command(no_args_is_help=True)
def export(
    params_filename: str = ModelParametersOption,
    output_path: str | None = ExportOutputOption,
    opset: int = OpsetOption,
    force: bool = ExportForceOption,
    verbose: bool = VerboseOption,
    quiet: bool = QuietOption,
) -> None:
    """Export a model's network to ONNX, for ONNX Runtime (--engine onnx / auto).

    An export that is current (same network, weights and opset, intact) is kept: --force redoes
    it."""
    configure_logger(verbose, quiet)
    with user_errors():
        import json
        from pathlib import Path

        from .engines.onnx_export import (
            ONNX_FILENAME,
            export_is_current,
            export_onnx,
            export_record,
        )
        from .model.checkpoint import find_checkpoint
        from .model.checks import checked_configuration
        from .model.description import record_export
        from .model.provider import ModelProvider

        params = checked_configuration(params_filename, "separate")
        model_dir = ModelProvider.default().get(
            params["model_dir"], unpublished=params.get("model_unpublished")
        )
        checkpoint = find_checkpoint(model_dir)
        if output_path is None:
            directory = Path(model_dir)
        else:
            check_writable_directory(output_path)
            directory = Path(output_path).resolve()
        if not force and export_is_current(params, checkpoint, directory / ONNX_FILENAME, opset):
            logger.info(
                f"{directory / ONNX_FILENAME} is current (same network, weights and opset): "
                "not converting again (--force redoes it)"
            )
            return
        target = export_onnx(params, model_dir, directory / ONNX_FILENAME, opset)
        record_export(directory, params, checkpoint, target, export_record(target), model_dir)
        if output_path is not None:
            # Kept for configurations written before model.json: -p OUTPUT/config.json.
            exported = {**params, "model_dir": str(directory)}
            (directory / "config.json").write_text(json.dumps(exported, indent=2) + "\n")
        logger.info(f"ONNX model written to {target}")


@spleeter.command()
def models(
    parameters: bool = typer.Option(
        True, "--parameters/--no-parameters", help="Count each network's parameters (builds it)"
    ),
    verbose: bool = VerboseOption,
) -> None:
    """List the bundled models: family, stems, band, size, local weights, where they come from."""
    configure_logger(verbose, quiet=not verbose)
    with user_errors():
        from .listing import HEADER, format_table, model_entries

        rows = [HEADER] + [entry.row() for entry in model_entries(parameters)]
        typer.echo(format_table(rows))


@spleeter.command(no_args_is_help=True)
def package(
    model_dir: str = typer.Argument(..., help="A model folder with its model.json"),
    output_path: str = typer.Option(
        ..., "-o", "--output_path", help="Release folder: NAME.tar.gz and checksum.json"
    ),
    name: str | None = typer.Option(None, "--name", help="Model name (default: the folder's)"),
    verbose: bool = VerboseOption,
    quiet: bool = QuietOption,
) -> None:
    """Package a model folder as a release archive in upstream's layout, for the provider to
    download (GITHUB_HOST / GITHUB_REPOSITORY / GITHUB_RELEASE)."""
    configure_logger(verbose, quiet)
    with user_errors():
        from .packaging import package_model

        archive = package_model(model_dir, output_path, name)
        logger.info(f"Release archive written to {archive} (its checksum in checksum.json)")


def _add_listen() -> None:
    from .listen.cli import listen

    spleeter.add_typer(listen, name="listen")


_add_listen()


def check_evaluation_extra(choice: MetricsChoice, plots: bool) -> bool:
    """Name every missing package of the evaluation extra in one line, before any work:
    an error (False) when the metrics need them, a warning when only the plots do."""
    from .utils.extras import EXTRA_PACKAGES, install_hint, missing_modules

    needed = ["musdb", "museval"] if choice is not MetricsChoice.fast else []
    if choice is not MetricsChoice.museval:
        needed.append("fast_bss_eval")
    missing = missing_modules(needed)
    no_plots = plots and missing_modules(["matplotlib"])
    names = EXTRA_PACKAGES["evaluation"]
    if missing:
        listed = ", ".join(names[module] for module in missing + (["matplotlib"] * bool(no_plots)))
        logger.error(
            f"spleeter evaluate --metrics {choice} needs the evaluation extra, missing: "
            f"{listed}; install it with {install_hint('evaluation')}"
        )
        return False
    if no_plots:
        logger.warning(
            "matplotlib (evaluation extra) is not installed: no plots (--no-plots silences "
            f"this); install it with {install_hint('evaluation')}"
        )
    return True


def parse_split(values: list[str] | None) -> dict[str, int] | None:
    """``--split other=3`` (repeatable) as ``{"other": 3}``."""
    if not values:
        return None
    split: dict[str, int] = {}
    for value in values:
        stem, _, count = value.partition("=")
        if not stem or not count.strip().isdigit():
            raise SpleeterError(f"--split {value}: expected STEM=K, e.g. --split other=3")
        split[stem.strip()] = int(count)
    return split


def check_writable_directory(path: str) -> None:
    """Fail early, naming ``path``, if output cannot be written there (before any work)."""
    from .outputs import probe_output_directory

    probe_output_directory(path)


def entrypoint() -> None:
    """Console-script entry point.

    SIGTERM and SIGHUP (a scheduler, ``timeout``, a container stop, a closed terminal) take the
    Ctrl-C path, so their run cleans up as an interrupted one does; any of them exits 128+signal.
    """
    from .interrupts import exit_status, translate_signals
    from .utils.allocator import keep_freed_memory

    keep_freed_memory()
    with translate_signals():
        try:
            spleeter()
        except SpleeterError as error:
            log_error(error)
            sys.exit(exit_status(EXIT_USER_ERROR))
        except SystemExit as done:
            sys.exit(exit_status(done.code))


if __name__ == "__main__":
    entrypoint()

"""The ``spleeter`` command line (``python -m spleeter`` does the same).

Commands import TensorFlow and the audio stack only when they run, so ``--help`` and
``--version`` answer at once.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from . import SpleeterError
from .audio import Codec
from .evaluation import (  # noqa: F401 (upstream's names, importable from here)
    EVALUATION_AUDIO_DIRECTORY,
    EVALUATION_INSTRUMENTS,
    EVALUATION_METRICS,
    EVALUATION_METRICS_DIRECTORY,
    EVALUATION_MIXTURE,
    EVALUATION_SPLIT,
    MetricsChoice,
)
from .options import (
    AudioAdapterOption,
    AudioBitrateOption,
    AudioCodecOption,
    AudioDurationOption,
    AudioInputArgument,
    AudioInputOption,
    AudioOffsetOption,
    AudioOutputOption,
    ClustererOption,
    ClusterOption,
    ClustersOption,
    DeviceOption,
    EngineOption,
    EvaluationCompareOption,
    EvaluationJobsOption,
    EvaluationMetricsOption,
    EvaluationPlotsOption,
    ExportOutputOption,
    FilenameFormatOption,
    ModelParametersOption,
    MUSDBDirectoryOption,
    MWFOption,
    OpsetOption,
    PretrainCsvOption,
    PretrainDataOption,
    PretrainExportOption,
    PretrainIterationsOption,
    PretrainMaxStepsOption,
    PretrainParametersOption,
    QuietOption,
    RecursiveOption,
    SchedulerOption,
    SkipExistingOption,
    SplitModelOption,
    SplitOption,
    StrategyChoice,
    TrainingDataDirectoryOption,
    TrainingInitFromOption,
    TrainingMaxStepsOption,
    TrainingMixedPrecisionOption,
    TrainingSeedOption,
    TrainingStrategyOption,
    VerboseOption,
    VersionOption,
    WorkersOption,
)
from .utils.logging import configure_logger, logger

EXIT_USER_ERROR = 1
EXIT_REMOVED_OPTION = 20

spleeter: typer.Typer = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    help="Music source separation: split a song into vocals, drums, bass, piano and other.",
)
"""The command-line application."""


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a :class:`SpleeterError` into ``ERROR:spleeter:`` lines (one per problem) and exit
    code 1."""
    try:
        yield
    except SpleeterError as error:
        log_error(error)
        raise typer.Exit(EXIT_USER_ERROR) from None


def log_error(error: SpleeterError) -> None:
    """Log an error: one ``ERROR:spleeter:`` record, or one per line of an error that has
    ``lines`` (a configuration's problems, each on its own line)."""
    for line in getattr(error, "lines", None) or [str(error)]:
        logger.error(line)


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
            mixed_precision=mixed_precision,
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
            mixed_precision=mixed_precision,
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
    recursive: bool = RecursiveOption,
    skip_existing: bool = SkipExistingOption,
    workers: int | None = WorkersOption,
    scheduler: str | None = SchedulerOption,
    cluster: str | None = ClusterOption,
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
        from .batch import separate_files
        from .inputs import expand_inputs
        from .separator import Separator

        audio_adapter = AudioAdapter.get(adapter)
        separator = Separator(
            params_filename,
            MWF=mwf,
            engine=engine,
            device=device,
            clusterer=clusterer,
            clusters=clusters,
            split=parse_split(split),
            split_model=split_model,
        )
        if (clusterer or clusters is not None or split) and (workers or scheduler or cluster):
            raise SpleeterError("--clusterer, --clusters and --split run in one process only")
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
                adapter=adapter,
                offset=offset,
                duration=duration,
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
    if choice is not MetricsChoice.fast:
        try:
            import musdb  # noqa: F401
            import museval  # noqa: F401
        except ImportError:
            logger.error("Extra dependencies musdb and museval not found")
            logger.error("Please install musdb and museval first, abort")
            raise typer.Exit(10) from None
    if choice is not MetricsChoice.museval:
        try:
            import fast_bss_eval  # noqa: F401
        except ImportError:
            logger.error("Extra dependency fast_bss_eval not found")
            logger.error("Please install fast-bss-eval first, abort")
            raise typer.Exit(10) from None
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
    verbose: bool = VerboseOption,
    quiet: bool = QuietOption,
) -> None:
    """Export a model's network to ONNX, for ONNX Runtime (--engine onnx / auto)."""
    configure_logger(verbose, quiet)
    with user_errors():
        import json
        from pathlib import Path

        from .engines.onnx_export import ONNX_FILENAME, export_onnx, export_record
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
        target = export_onnx(params, model_dir, directory / ONNX_FILENAME, opset)
        record_export(directory, params, checkpoint, target, export_record(target), model_dir)
        if output_path is not None:
            # Kept for configurations written before model.json: -p OUTPUT/config.json.
            exported = {**params, "model_dir": str(directory)}
            (directory / "config.json").write_text(json.dumps(exported, indent=2) + "\n")
        logger.info(f"ONNX model written to {target}")


def _add_listen() -> None:
    from .listen.cli import listen

    spleeter.add_typer(listen, name="listen")


_add_listen()


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

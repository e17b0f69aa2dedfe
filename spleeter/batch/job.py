"""One catalogue run's settings, and the separation of one file as a cluster worker does it.

Everything here is picklable and self-contained: a worker process (local or on another machine)
builds its own :class:`Separator` from a :class:`Job`, once, then separates whole files.
"""

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field

from .. import SpleeterError
from ..audio import Codec
from ..audio.adapter import AudioAdapter
from ..audio.encoding import ClipMode, OutputFormat, SampleFormat
from ..audio.streams import AudioReader
from ..separation.selection import StemSelection
from ..separator import Separator


@dataclass(frozen=True)
class Job:
    """What every file of a run is separated with (the ``spleeter separate`` options)."""

    params_descriptor: str
    output_path: str
    filename_format: str
    codec: Codec = Codec.WAV
    bitrate: str = "128k"
    mwf: bool = False
    engine: str = "auto"
    device: str = "auto"
    precision: str = "float32"
    adapter: str = ""
    offset: float = 0.0
    duration: float | None = None
    # issue 17: output choice, encoding, test-time augmentation (left out of settings() at
    # their defaults, so that manifests written before them stay valid)
    stems: tuple[str, ...] | None = None
    two_stems: str | None = None
    sample_format: str | None = None
    sample_rate: int | None = None
    clip_mode: str = "clamp"
    shifts: int = 1
    overlap: float = 0.0

    def settings(self) -> str:
        """The settings that decide the output samples, as JSON (a manifest row is only
        "done" for the settings it was separated with)."""
        values = asdict(self)
        values["codec"] = Codec(self.codec).value
        for name, default in _LATER_DEFAULTS.items():
            if values[name] == default:
                del values[name]
        if values.get("stems") is not None:
            values["stems"] = list(values["stems"])
        return json.dumps(values, sort_keys=True)

    def output_format(self) -> OutputFormat:
        """The :class:`OutputFormat` of these settings."""
        sample_format = None if self.sample_format is None else SampleFormat(self.sample_format)
        return OutputFormat(sample_format, self.sample_rate, ClipMode(self.clip_mode))

    def selection(self) -> StemSelection:
        return StemSelection(self.stems, self.two_stems)

    def key(self) -> str:
        """A short name for these settings (plugin and actor names on a shared cluster)."""
        return hashlib.sha256(self.settings().encode()).hexdigest()[:12]


_LATER_DEFAULTS = {
    "precision": "float32",
    "stems": None,
    "two_stems": None,
    "sample_format": None,
    "sample_rate": None,
    "clip_mode": "clamp",
    "shifts": 1,
    "overlap": 0.0,
}
"""Fields added after the first manifests, and their defaults."""


@dataclass
class Outcome:
    """What separating one input gave: its output files and their checksums, or an error."""

    filename: str
    worker: str
    outputs: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    audio_seconds: float | None = None
    error: str | None = None


class ModelUnavailable(SpleeterError):
    """The worker could not load the model: not the file's fault, so another worker may retry."""


class Worker:
    """A loaded model and adapter on one worker process, reused for every file it is given."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.error: str | None = None
        try:
            self.separator = Separator(
                job.params_descriptor,
                MWF=job.mwf,
                multiprocess=False,  # the worker is the unit of parallelism
                engine=job.engine,
                device=job.device,
                precision=job.precision,
                shifts=job.shifts,
                overlap=job.overlap,
            )
            self.adapter = AudioAdapter.get(job.adapter)
            self.separator.load()
        except Exception as error:  # reported per worker: the files go to the others
            self.error = f"cannot load the model: {error}"

    def separate(self, filename: str, worker: str) -> Outcome:
        """Separate ``filename`` into its output files (all or none). Input problems come
        back in the outcome; a model that did not load raises :class:`ModelUnavailable`."""
        if self.error is not None:
            raise ModelUnavailable(f"worker {worker}: {self.error}")
        job, separator = self.job, self.separator
        start = time.perf_counter()
        outcome = Outcome(filename, worker)
        try:
            selection = job.selection()
            instruments = separator.instruments
            paths = separator.output_paths(
                filename,
                job.output_path,
                job.filename_format,
                job.codec,
                instruments=selection.outputs(instruments) if instruments else None,
            )

            def open_input() -> AudioReader:
                return self.adapter.open_reader(
                    filename,
                    offset=job.offset,
                    duration=job.duration,
                    sample_rate=separator.sample_rate,
                )

            with open_input() as reader:
                outcome.audio_seconds = reader.duration
                separator.separate_reader(
                    reader,
                    paths,
                    job.codec,
                    self.adapter,
                    job.bitrate,
                    reopen=open_input,
                    stems=list(selection.stems) if selection.stems else None,
                    two_stems=selection.two_stems,
                    output_format=job.output_format(),
                )
            outcome.outputs = paths
            outcome.checksums = {path: sha256(path) for path in paths.values()}
        except SpleeterError as error:
            outcome.error = str(error)
        outcome.seconds = time.perf_counter() - start
        return outcome


def sha256(path: str) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def absolute_job(job: Job) -> Job:
    """``job`` with local paths made absolute, so that workers in other directories agree."""
    descriptor = job.params_descriptor
    if os.path.exists(descriptor):
        descriptor = os.path.abspath(descriptor)
    return Job(
        **{
            **asdict(job),
            "params_descriptor": descriptor,
            "output_path": os.path.abspath(job.output_path),
        }
    )

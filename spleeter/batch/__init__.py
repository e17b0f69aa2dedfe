"""Separating many files: one process (:func:`separate_files`), or a cluster of workers
(:func:`separate_catalogue`, on Dask or Ray, with a resumable run manifest)."""

from .catalogue import separate_catalogue
from .job import Job
from .local import separate_files

__all__ = ["Job", "separate_catalogue", "separate_files"]

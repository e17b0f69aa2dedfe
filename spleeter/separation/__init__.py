"""What a separation is, and the segment-by-segment pipeline every kind of model shares.

A **separation family** (:mod:`.family`) decides how a network's outputs become sources: the
mask family (:mod:`.mask`: ratio masks with extension, or norbert's Wiener filter), the cluster
family (:mod:`.cluster`: an autoencoder's latent frames) and the embedding family
(:mod:`.embedding`: per-bin embeddings, deep clustering). A family may need one pass over a
track or two (observe the whole track, then separate); the sources of a track are known once
its observation is done, before any file is opened. The pipeline (:mod:`.pipeline`) segments
the input, feeds the family and rebuilds the waveforms; it does the same for every family.

:func:`separation_family` picks a configuration's family from the network registry
(:mod:`spleeter.model.registry`): nothing above this package names a family or a model type.
"""

import importlib
from collections.abc import Callable
from typing import Any

from .. import SpleeterError
from ..engines import Engine
from ..model.registry import architecture
from .family import SeparationFamily, TrackSeparation

FAMILIES: dict[str, str] = {
    "mask": "spleeter.separation.mask:MaskFamily",
    "cluster": "spleeter.separation.cluster:ClusterFamily",
    "embedding": "spleeter.separation.embedding:EmbeddingFamily",
}
"""Each family's class, by the name architectures declare in the registry."""


def separation_family(
    params: dict[str, Any], engine: Callable[[], Engine], **options: Any
) -> SeparationFamily:
    """The family separating with ``params``' network; ``engine`` loads the network (once,
    when first needed); ``options`` are the family's own (``mwf`` for masks; ``clusterer``,
    ``clusters``, ``seed`` for clusters); options left None are not passed.

    Raises:
        SpleeterError: the network is not a separator, declares an unknown family, or an option
            does not apply to its family.
    """
    entry = architecture(params)
    if entry.family is None:
        raise SpleeterError(f"{entry.type} ({entry.description}) does not separate sources")
    if entry.family not in FAMILIES:
        raise SpleeterError(f"{entry.type} declares an unknown separation family {entry.family}")
    module_name, _, class_name = FAMILIES[entry.family].partition(":")
    family = getattr(importlib.import_module(module_name), class_name)
    accepted = getattr(family, "OPTIONS", ("mwf",))
    given = {name: value for name, value in options.items() if value is not None}
    refused = [name for name in given if name not in accepted]
    if refused:
        flags = ", ".join(f"--{name}" for name in refused)
        raise SpleeterError(f"{flags} does not apply to {entry.type} ({entry.family} family)")
    return family(params, engine, **given)


__all__ = ["FAMILIES", "SeparationFamily", "TrackSeparation", "separation_family"]

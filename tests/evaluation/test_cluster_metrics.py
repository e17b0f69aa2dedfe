"""Metrics for unnamed sources: permutation matching and the seed's figures, on real audio."""

import numpy as np

from spleeter.evaluation.cluster_metrics import (
    energy_shares,
    frame_assignment_entropy_bits,
    hoyer_sparsity,
    matched_scores,
    reconstruction_mse,
    spectral_entropy_bits,
)


def test_matching_finds_the_permutation(musdb_stems):
    n = 44100 * 2
    references = {name: musdb_stems[name][:n] for name in ("drums", "bass", "other")}
    rng = np.random.default_rng(0)
    estimates = {
        "c0": references["other"] + 0.01 * rng.standard_normal((n, 2)).astype(np.float32),
        "c1": references["drums"],
        "c2": references["bass"] * 0.5,
    }
    scores = matched_scores(references, estimates)
    assert {name: s["estimate"] for name, s in scores.items()} == {
        "drums": "c1",
        "bass": "c2",
        "other": "c0",
    }
    assert scores["drums"]["SDR"] > 60 and scores["bass"]["SI-SDR"] > 60
    # Fewer estimates than references: the left-over reference is scored against silence.
    fewer = matched_scores(references, {"c0": estimates["c1"]})
    assert sorted(s["estimate"] is None for s in fewer.values()) == [False, True, True]


def test_seed_figures(musdb_stems):
    mixture = musdb_stems["mixture"]
    entropy = spectral_entropy_bits(mixture)
    assert 0 < entropy <= np.log2(513) + 1e-9
    tone = np.sin(2 * np.pi * 1000 * np.arange(44100) / 44100)[:, None].repeat(2, 1)
    assert spectral_entropy_bits(tone) < entropy  # a tone concentrates its spectrum
    assert hoyer_sparsity(tone) > hoyer_sparsity(mixture)
    halves = [mixture * 0.5, mixture * 0.5]
    assert np.allclose(energy_shares(halves, mixture), [0.25, 0.25])
    assert reconstruction_mse(mixture, halves) < 1e-12
    assert frame_assignment_entropy_bits(np.array([10, 10, 10, 10])) == 2.0
    assert frame_assignment_entropy_bits(np.array([40, 0])) == 0.0

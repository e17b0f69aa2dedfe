"""A Zipformer-style band-split transformer with per-stem class tokens (``transformer.zipformer``).

A mask-family network: the mixture magnitude ``(batch, T, F, C)`` in, one magnitude estimate
per stem out (a sigmoid mask times the input), like the U-Net.

1. **Band split** (as the band-split RoFormer): the ``F`` bins are cut at ``band_edges``; each
   band's ``width x C`` values are RMS-normalised and projected to ``dim``:
   ``(batch, T, bands, dim)``.
2. **Zipformer stacks over time**, one per entry of ``downsampling`` (e.g. 2, 4, 8, 4, 2): the
   learned down-sampling (softmax-weighted sum of ``d`` frames), ``layers`` layers at that frame
   rate, repeat up-sampling, and the per-channel bypass ``x + (y - x) * c``. A layer is
   feed-forward (SwooshL), attention over frames (per band), attention over bands (per frame),
   a depth-wise convolution over frames (SwooshR), each pre-normed by a BiasNorm and added; the
   attention uses rotary positions, so any ``T`` (a multiple of the factors) works.
3. **Semantic grouping**: one learnable class token per stem attends over all band x frame
   features; each stem's token gives a FiLM scale and shift of the shared features, then the
   stem's own per-band mask MLP (``dim -> head_ratio x dim -> width x C``, sigmoid). With
   ``presence_loss_weight`` > 0, a training-only head reads each grouped token and outputs
   ``<stem>_presence``, the logit of "this stem is audible in the chunk" (the presence loss
   trains the tokens to tell the stems apart).

Every output frame depends only on its ``T``-frame block (the separator's non-overlapping
blocks), so separation does not depend on the segment size. Presets and checks:
:mod:`spleeter.model.transformer_config`.
"""

from collections.abc import Iterable
from typing import Any

import keras

from ..layers.zipformer import (
    AxialAttention,
    BandMaskHead,
    BandSplit,
    BiasNorm,
    Bypass,
    ClassTokens,
    Downsample,
    FeedForward,
    TimeConvolution,
    upsample,
)
from ..transformer_config import TransformerConfig


def _layer(x: Any, config: TransformerConfig, name: str) -> Any:
    x = FeedForward(config.ff_ratio, name=f"{name}_ff")(x)
    x = AxialAttention(config.heads, axis=1, name=f"{name}_time_attention")(x)
    x = AxialAttention(config.heads, axis=2, name=f"{name}_band_attention")(x)
    if config.conv_kernel:
        x = TimeConvolution(config.conv_kernel, name=f"{name}_conv")(x)
    return x


def zipformer(input_tensor: Any, instruments: Iterable[str], params: dict | None = None) -> dict:
    """The network of ``model.params`` (a preset and its overrides) on ``input_tensor``."""
    instruments = list(instruments)
    config = TransformerConfig.from_params(params)
    bins, channels = int(input_tensor.shape[2]), int(input_tensor.shape[3])
    edges = config.edges(bins)
    x = BandSplit(edges, config.dim, name="band_split")(input_tensor)
    for index, (factor, layers) in enumerate(zip(config.downsampling, config.layers, strict=True)):
        x_in = x
        if factor > 1:
            x = Downsample(factor, name=f"stack{index}_downsample")(x)
        for layer in range(layers):
            x = _layer(x, config, f"stack{index}_layer{layer}")
        if factor > 1:
            x = keras.layers.Lambda(
                lambda t, f=factor: upsample(t, f), name=f"stack{index}_upsample"
            )(x)
            x = Bypass(config.bypass_min, name=f"stack{index}_bypass")([x_in, x])
    features = BiasNorm(name="final_norm")(x)
    tokens = ClassTokens(len(instruments), config.token_heads, name="class_tokens")
    scale, shift, grouped = tokens(features)
    outputs = {}
    if config.presence_loss_weight > 0:  # training-only outputs (build_model leaves them out)
        logits = keras.layers.Dense(1, name="presence_head")(grouped)
        for index, name in enumerate(instruments):
            outputs[f"{name}_presence"] = keras.layers.Identity(name=f"{name}_presence")(
                logits[:, index, 0]
            )
    for index, name in enumerate(instruments):
        stem_scale = scale[:, index][:, None, None, :]
        stem_shift = shift[:, index][:, None, None, :]
        conditioned = features * (1.0 + stem_scale) + stem_shift
        mask = BandMaskHead(edges, channels, config.head_ratio * config.dim, name=f"{name}_head")(
            conditioned
        )
        outputs[f"{name}_spectrogram"] = keras.layers.Multiply(name=f"{name}_spectrogram")(
            [mask, input_tensor]
        )
    return outputs

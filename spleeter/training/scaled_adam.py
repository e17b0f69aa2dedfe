"""ScaledAdam, the Zipformer's optimizer (icefall, ``zipformer/optim.py``), for Keras 3.

Adam whose step is relative to each tensor's size: a tensor of more than one element moves by
``lr * max(rms(p), param_min_rms) * m / sqrt(v)`` (so ``lr`` is a fraction of the tensor's RMS,
whatever its initialisation), plus a learned change of its overall scale: the gradient of the
loss with respect to a log-scale of the whole tensor, ``sum(p * g)``, is normalised by its own
running RMS and moves ``p`` along itself by ``scalar_lr_scale * lr`` at most per step; a tensor
whose RMS is above ``param_max_rms`` shrinks, one below ``param_min_rms`` stops shrinking.
Single-element tensors (the Zipformer's scalar gains) get plain Adam at ``scalar_lr_scale * lr``
and are clamped to ``+-scalar_max``. Momentum is applied to the sum of both updates, without
first-moment bias correction (as icefall: a slower start helps stability).

Deliberate differences from icefall: the scale and the RMS are updated every step (icefall
batches them every 4th, a speed choice on GPUs; the expected update is the same), and the
gradient clipping is the loop's global ``clip_norm`` rather than icefall's clipping to twice
the median recent norm. There is no weight decay (``param_max_rms`` bounds the tensors).
"""

import math
from typing import Any

import keras
from keras import ops


class ScaledAdam(keras.optimizers.Optimizer):
    """See the module docstring; the defaults are icefall's (its Zipformer recipes pass
    ``lr = 0.045``)."""

    def __init__(
        self,
        learning_rate: Any = 0.045,
        beta_1: float = 0.9,
        beta_2: float = 0.98,
        epsilon: float = 1e-8,
        scalar_lr_scale: float = 0.1,
        param_min_rms: float = 1e-5,
        param_max_rms: float = 3.0,
        scalar_max: float = 10.0,
        name: str = "ScaledAdam",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.scalar_lr_scale = scalar_lr_scale
        self.param_min_rms, self.param_max_rms = param_min_rms, param_max_rms
        self.scalar_max = scalar_max

    def build(self, var_list: list[Any]) -> None:
        if self.built:
            return
        super().build(var_list)
        self._deltas, self._exp_avg_sqs = self.add_optimizer_variables(
            var_list, ["delta", "exp_avg_sq"]
        )
        # one running mean square of the scale gradient per tensor
        self._scale_exp_avg_sqs = [
            self.add_variable(shape=(), name=f"scale_exp_avg_sq_{i}") for i in range(len(var_list))
        ]

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        grad = ops.cast(gradient, dtype)
        index = self._get_variable_index(variable)
        delta, exp_avg_sq = self._deltas[index], self._exp_avg_sqs[index]
        beta_1, beta_2, eps = self.beta_1, self.beta_2, self.epsilon
        step = ops.cast(self.iterations + 1, dtype)
        correction = 1.0 - ops.power(ops.cast(beta_2, dtype), step)  # Adam's bias correction 2
        self.assign(delta, delta * beta_1)
        self.assign(exp_avg_sq, exp_avg_sq * beta_2 + (1.0 - beta_2) * ops.square(grad))
        scalar_lr = lr * self.scalar_lr_scale
        if math.prod(variable.shape) == 1:
            denom = ops.sqrt(exp_avg_sq / correction) + eps
            self.assign_add(delta, -scalar_lr * (1.0 - beta_1) * grad / denom)
            self.assign(variable, ops.clip(variable, -self.scalar_max, self.scalar_max) + delta)
            return
        rms = ops.sqrt(ops.mean(ops.square(variable)))
        # the overall scale: gradient with respect to log(scale) is sum(p * g)
        scale_sq = self._scale_exp_avg_sqs[index]
        scale_grad = ops.sum(variable * grad)
        self.assign(scale_sq, scale_sq * beta_2 + (1.0 - beta_2) * ops.square(scale_grad))
        scale_step = -scalar_lr * ops.sqrt(correction) * scale_grad / (ops.sqrt(scale_sq) + eps)
        scale_step = ops.where(rms < self.param_min_rms, 0.0, scale_step)
        scale_step = ops.where(rms > self.param_max_rms, -scalar_lr, scale_step)
        self.assign_add(delta, (1.0 - beta_1) * scale_step * variable)
        # the direction: Adam's, with the step a fraction of the tensor's RMS
        corrected = ops.where(correction < 0.99, exp_avg_sq / correction, exp_avg_sq)
        size = ops.maximum(rms, self.param_min_rms)
        self.assign_add(delta, -lr * (1.0 - beta_1) * size * grad / (ops.sqrt(corrected) + eps))
        self.assign_add(variable, delta)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
            scalar_lr_scale=self.scalar_lr_scale,
            param_min_rms=self.param_min_rms,
            param_max_rms=self.param_max_rms,
            scalar_max=self.scalar_max,
        )
        return config

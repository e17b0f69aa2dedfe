"""The loop's optimizers: upstream's, AdamW, ScaledAdam, warm-up, cosine and Eden decay,
clipping, checkpointed optimizer state, bad names."""

import math

import numpy as np
import pytest

from spleeter import SpleeterError
from spleeter.training.optimizers import (
    OptimizerSettings,
    build_optimizer,
    optimizer_settings,
    warn_of_ignored_keys,
)
from spleeter.training.settings import training_settings
from spleeter.utils.configuration import load_configuration


@pytest.fixture(scope="module")
def keras():
    from spleeter.engines.tensorflow import import_tensorflow

    import_tensorflow()
    import keras

    return keras


def test_warmup_then_cosine_decay_reaches_the_floor(keras):
    settings = OptimizerSettings(
        "AdamW", 1e-3, warmup_steps=10, decay="cosine", decay_steps=90, min_learning_rate=1e-5
    )
    optimizer = build_optimizer(settings)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    schedule = optimizer._learning_rate
    rates = [float(schedule(step)) for step in (0, 4, 9, 10, 55, 100, 500)]
    assert rates[0] == pytest.approx(1e-4) and rates[1] == pytest.approx(5e-4)
    assert rates[2] == pytest.approx(1e-3) and rates[3] == pytest.approx(1e-3)
    middle = 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + math.cos(math.pi * 45 / 90))
    assert rates[4] == pytest.approx(middle, rel=1e-5)
    assert rates[5] == pytest.approx(1e-5) and rates[6] == pytest.approx(1e-5)


def test_adamw_decays_the_weights_and_clipping_bounds_the_step(keras):
    variable = keras.Variable(np.array([1.0, -1.0], np.float32))
    adamw = build_optimizer(OptimizerSettings("AdamW", 0.1, weight_decay=0.5))
    adamw.apply_gradients([(np.zeros(2, np.float32), variable)])
    np.testing.assert_allclose(variable.numpy(), [1.0 - 0.1 * 0.5, -(1.0 - 0.1 * 0.5)], rtol=1e-6)

    clipped = keras.Variable(np.array([0.0], np.float32))
    sgd = build_optimizer(OptimizerSettings("SGD", 1.0, clip_norm=0.5))
    sgd.apply_gradients([(np.array([10.0], np.float32), clipped)])
    assert float(clipped.numpy()[0]) == pytest.approx(-0.5)


def test_a_configuration_without_schedule_keys_keeps_a_constant_rate(keras):
    settings = optimizer_settings({"learning_rate": 1e-4, "train_max_steps": 100})
    optimizer = build_optimizer(settings)
    assert type(optimizer).__name__ == "Adam"
    assert float(optimizer.learning_rate) == pytest.approx(1e-4)


def test_a_weight_decay_that_the_optimizer_ignores_is_named(capsys):
    """The transformer recipes set weight_decay for AdamW; switched to ScaledAdam (which has
    none), the run says so instead of silently dropping it."""
    params = {"optimizer": "ScaledAdam", "learning_rate": 0.045, "weight_decay": 0.01}
    warn_of_ignored_keys(params)
    warning = "WARNING:spleeter:weight_decay is used by AdamW only: ScaledAdam trains without it"
    assert warning in capsys.readouterr().err
    warn_of_ignored_keys(dict(params, optimizer="AdamW"))
    assert "weight_decay" not in capsys.readouterr().err


def test_unknown_optimizer_and_bad_schedule_values_are_refused_together():
    params = load_configuration("spleeter:4stems")
    params.update(
        train_csv="train.csv",
        train_max_steps=10,
        optimizer="adam",
        lr_decay="linear",
        clip_norm=-1,
        eden_steps=0.5,
    )
    with pytest.raises(SpleeterError) as error:
        training_settings(params)
    message = str(error.value)
    assert "unknown optimizer 'adam' (expected one of Adam, AdamW, Adadelta, SGD, ScaledAdam)" in (
        message
    )
    assert "unknown lr_decay 'linear'" in message
    assert "clip_norm must be a positive number (got -1)" in message
    assert "eden_steps must be an integer >= 1 (got 0.5)" in message


def _scaled_adam_steps(keras, values, gradients, learning_rate=0.045):
    optimizer = build_optimizer(OptimizerSettings("ScaledAdam", learning_rate))
    variables = [keras.Variable(np.asarray(v, np.float32)) for v in values]
    for step in gradients:
        optimizer.apply_gradients(
            [(np.asarray(g, np.float32), v) for g, v in zip(step, variables, strict=True)]
        )
    return [v.numpy() for v in variables]


def test_scaled_adam_steps_are_a_fraction_of_each_tensors_rms(keras):
    """Icefall's rule: with a gradient that does not change the tensor's scale (orthogonal to
    it), the first step moves every element by lr (1 - beta1) rms(p), for a tensor of weights
    of 0.01 as for one of 1; and scaling a tensor (and so dividing a scale-free loss's
    gradient) by 100 scales its whole trajectory by 100."""
    rng = np.random.default_rng(0)
    small = np.array([[0.01, -0.01], [0.01, -0.01]])
    large = np.array([[1.0, -1.0], [1.0, -1.0]])
    orthogonal = np.array([[1.0, 1.0], [-1.0, -1.0]])  # sum(p * g) = 0 for both
    after = _scaled_adam_steps(keras, [small, large], [[orthogonal, orthogonal]])
    for before, moved, rms in ((small, after[0], 0.01), (large, after[1], 1.0)):
        np.testing.assert_allclose(
            np.abs(moved - before), 0.045 * 0.1 * rms, rtol=1e-4, err_msg=str(rms)
        )
    weights = 0.01 * rng.normal(size=(6, 5))  # RMS 0.01 and 1: inside [1e-5, 3]
    gradients = [[rng.normal(size=(6, 5))] for _ in range(5)]
    (base,) = _scaled_adam_steps(keras, [weights], gradients)
    (scaled,) = _scaled_adam_steps(keras, [100 * weights], [[g[0] / 100] for g in gradients])
    np.testing.assert_allclose(scaled, 100 * base, rtol=1e-4)
    assert np.abs(base - weights).max() > 1e-4


def test_scaled_adam_learns_the_scale_bounds_it_and_clamps_scalars(keras):
    """A gradient along the tensor (the loss wants it larger) grows it by scalar_lr_scale lr
    per step at most; a tensor of RMS above 3 shrinks even without a gradient; a one-element
    tensor gets plain Adam at scalar_lr_scale lr and is clamped to +-10."""
    weights = np.full((4, 4), 0.5)
    grown, big, scalar = _scaled_adam_steps(
        keras, [weights, np.full((3, 3), 5.0), 20.0],
        [[-weights, np.zeros((3, 3)), 1.0]],
    )  # fmt: skip
    # one step: the scale term (1 - b1) * 0.1 lr * p plus Adam's (1 - b1) lr rms(p) sign(-g)
    np.testing.assert_allclose(grown, 0.5 * (1 + 0.1 * 0.0045 + 0.1 * 0.045), rtol=1e-5)
    np.testing.assert_allclose(big, 5.0 * (1 - 0.1 * 0.0045), rtol=1e-6)
    assert float(scalar) == pytest.approx(10.0 - 0.1 * 0.0045)


def test_eden_decay_after_warm_up(keras):
    settings = OptimizerSettings("ScaledAdam", 0.04, warmup_steps=4, decay="eden", eden_steps=100)
    schedule = build_optimizer(settings)._learning_rate
    rates = {step: float(schedule(step)) for step in (0, 3, 100, 1000)}
    assert rates[0] == pytest.approx(0.04 / 4, rel=1e-5)
    assert rates[3] == pytest.approx(0.04 * (1 + 9e-4) ** -0.25, rel=1e-5)
    assert rates[100] == pytest.approx(0.04 * 2**-0.25, rel=1e-5)
    assert rates[1000] == pytest.approx(0.04 * 101**-0.25, rel=1e-5)


@pytest.mark.parametrize("name", ["ScaledAdam", "AdamW"])
def test_optimizer_state_round_trips_through_a_checkpoint(keras, tmp_path, name):
    """Every slot, ScaledAdam's per-tensor scale statistics too, comes back from the
    checkpoint, so a resumed run takes the same next step."""
    from spleeter.training import checkpointing

    def model_and_optimizer():
        keras.utils.set_random_seed(1)
        model = keras.Sequential(
            [keras.Input((3,)), keras.layers.Dense(2, name="dense")], name="net"
        )
        return model, build_optimizer(OptimizerSettings(name, 0.01))

    x = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)

    def one_step(model, optimizer):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = keras.ops.mean(keras.ops.square(model(x) - 1.0))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))

    model, optimizer = model_and_optimizer()
    for _ in range(3):
        one_step(model, optimizer)
    prefix = checkpointing.save(str(tmp_path), model, optimizer, 3)
    restored_model, restored = model_and_optimizer()
    restored.build(restored_model.trainable_variables)
    assert checkpointing.restore(prefix, restored_model, restored) == 3
    assert int(restored.iterations.numpy()) == 3
    for ours, theirs in zip(restored.variables, optimizer.variables, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=ours.path)
    one_step(model, optimizer)
    one_step(restored_model, restored)
    for ours, theirs in zip(restored_model.weights, model.weights, strict=True):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())

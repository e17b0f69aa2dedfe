"""The loop's optimizers: upstream's, AdamW, warm-up and cosine decay, clipping, bad names."""

import math

import numpy as np
import pytest

from spleeter import SpleeterError
from spleeter.training.optimizers import OptimizerSettings, build_optimizer, optimizer_settings
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


def test_unknown_optimizer_and_bad_schedule_values_are_refused_together():
    params = load_configuration("spleeter:4stems")
    params.update(
        train_csv="train.csv",
        train_max_steps=10,
        optimizer="adam",
        lr_decay="linear",
        clip_norm=-1,
    )
    with pytest.raises(SpleeterError) as error:
        training_settings(params)
    message = str(error.value)
    assert "unknown optimizer 'adam' (expected one of Adam, AdamW, Adadelta, SGD)" in message
    assert "unknown lr_decay 'linear'" in message
    assert "clip_norm must be a positive number (got -1)" in message

"""Reading TensorFlow checkpoints without TensorFlow: the same tensors, damage detected."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from spleeter import SpleeterError
from spleeter.model.checkpoint import find_checkpoint, tensor_reader
from spleeter.model.tensor_bundle import BundleError, TensorBundle

FIXTURES = Path(__file__).parents[1] / "fixtures" / "upstream" / "models"


@pytest.mark.parametrize("model", sorted(path.name for path in FIXTURES.iterdir()))
def test_same_tensors_as_tensorflow(model):
    import tensorflow as tf

    prefix = find_checkpoint(FIXTURES / model)
    ours = TensorBundle(prefix)
    theirs = tf.train.load_checkpoint(prefix)
    shapes = theirs.get_variable_to_shape_map()
    assert ours.shape_map() == {name: tuple(shape) for name, shape in shapes.items()}
    assert len(shapes) > 10
    for name in shapes:
        expected = theirs.get_tensor(name)
        value = ours.tensor(name)
        assert value.dtype == expected.dtype and value.shape == expected.shape, name
        assert np.array_equal(value, expected), name


def _copy(tmp_path: Path) -> str:
    target = tmp_path / "model"
    shutil.copytree(FIXTURES / "unet_2stems", target)
    return find_checkpoint(target)


def test_flipped_byte_is_caught_by_the_checksum(tmp_path):
    prefix = _copy(tmp_path)
    bundle = TensorBundle(prefix)
    entry = bundle.entries["conv2d/kernel"]
    data = Path(f"{prefix}.data-00000-of-00001")
    content = bytearray(data.read_bytes())
    content[entry.offset + 3] ^= 0x10
    data.write_bytes(bytes(content))
    with pytest.raises(BundleError, match="conv2d/kernel: its bytes do not match"):
        bundle.tensor("conv2d/kernel")
    read = tensor_reader(prefix)
    with pytest.raises(SpleeterError, match=r"model\.ckpt-600 is damaged .*conv2d/kernel"):
        read("conv2d/kernel", entry.shape)
    assert read("conv2d/bias", bundle.entries["conv2d/bias"].shape).shape == (4,)


def test_cut_data_file_and_bad_index_are_clear_errors(tmp_path):
    prefix = _copy(tmp_path)
    data = Path(f"{prefix}.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:100])
    last = max(TensorBundle(prefix).entries.items(), key=lambda item: item[1].offset)[0]
    with pytest.raises(BundleError, match="cut short"):
        TensorBundle(prefix).tensor(last)
    index = Path(f"{prefix}.index")
    index.write_bytes(b"not a checkpoint index at all, but long enough to have a footer...")
    with pytest.raises(SpleeterError, match=r"cannot be read: .*not a TensorFlow checkpoint index"):
        tensor_reader(prefix)


def test_missing_variable_and_wrong_shape_name_the_variable(tmp_path):
    read = tensor_reader(find_checkpoint(FIXTURES / "unet_2stems"))
    with pytest.raises(SpleeterError, match="has no variable conv2d_99/kernel"):
        read("conv2d_99/kernel", (5, 5, 2, 4))
    with pytest.raises(SpleeterError, match=r"conv2d/kernel has shape \(5, 5, 2, 4\) .* needs"):
        read("conv2d/kernel", (5, 5, 2, 16))

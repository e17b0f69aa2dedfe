"""``spleeter train --strategy``: mirrored on two logical CPU devices, multi-worker over two local
processes, and a missing or malformed ``TF_CONFIG`` refused before any work.

Logical CPU devices must be configured before TensorFlow initialises, so the mirrored runs go
through the command line (``CliRunner``) inside a subprocess that splits its CPU first. The
tiny configuration of ``test_train.py`` is used throughout.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from modelkit import read_scalars
from test_train import checkpoint, fake_dataset, run, write_config

from spleeter.training.strategies import check_tf_config

MIRRORED_CLI = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from typer.testing import CliRunner
from spleeter.__main__ import spleeter
data = sys.argv[1]
for config, steps in zip(sys.argv[2::2], sys.argv[3::2]):
    args = ["train", "-p", config, "-d", data, "--strategy", "mirrored", "--max-steps", steps]
    result = CliRunner().invoke(spleeter, args)
    print(result.output)
    if result.exit_code:
        sys.exit(f"exit status {result.exit_code}")
"""


@pytest.fixture(scope="module")
def noise_data(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("noise")
    return root, fake_dataset(root)


LOSS_TOLERANCE = 5e-3
"""Relative difference allowed between the per-step losses of the default strategy and of
two mirrored replicas on the same global batches of 2. Not only float rounding: batch norm
normalises with the statistics of each replica's own example (as Keras does; there is no
synchronised batch norm), which changes the activations, the loss and the updates a little
(measured: at most 0.05 % over the 10 steps; 10 times that is allowed)."""


def files(directory: Path) -> list[str]:
    """The run's files, TensorBoard event files aside (their names hold a time and a host)."""
    return sorted(
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file() and "tfevents" not in path.name
    )


def test_mirrored_on_two_cpu_devices_trains_resumes_and_matches_default(noise_data, tmp_path):
    """``--strategy mirrored`` over 2 logical CPU devices: the default strategy's checkpoint
    files and tensors, 6 + 4 steps equal to 10 straight, losses close to the default's."""
    root, csv = noise_data
    common = {
        "train_csv": str(csv),
        "validation_csv": None,
        "batch_size": 2,
        "save_checkpoints_steps": 4,
        "save_summary_steps": 1,
    }
    configs = {
        name: write_config(tmp_path / f"{name}.json", model_dir=str(tmp_path / name), **common)
        for name in ("default", "whole", "split")
    }
    result = run("train", "-p", configs["default"], "-d", str(root), "--strategy", "default")
    assert result.exit_code == 0, result.output
    script = tmp_path / "mirrored_cli.py"
    script.write_text(MIRRORED_CLI)
    arguments = [configs["whole"], "10", configs["split"], "6", configs["split"], "10"]
    completed = subprocess.run(
        [sys.executable, str(script), str(root), *arguments], capture_output=True, cwd=tmp_path
    )
    output = completed.stdout.decode() + completed.stderr.decode()
    assert completed.returncode == 0, output[-3000:]
    assert "MirroredStrategy on 2 logical CPU device(s): there is no GPU" in output
    assert "MirroredStrategy (2 replica(s))" in output
    assert "Resuming from" in output and "(step 6)" in output

    default, whole, split = (tmp_path / name for name in ("default", "whole", "split"))
    assert files(whole) == files(default) == files(split)
    expected, straight, resumed = (checkpoint(d, 10) for d in (default, whole, split))
    assert {k: (v.shape, v.dtype) for k, v in straight.items()} == {
        k: (v.shape, v.dtype) for k, v in expected.items()
    }
    # Resuming is exact up to float rounding (the all-reduce may sum in another order).
    for name, value in straight.items():
        np.testing.assert_allclose(resumed[name], value, rtol=1e-5, atol=1e-7, err_msg=name)
    assert int(resumed["global_step"]) == 10
    assert int(resumed["spleeter_training/optimizer_iterations"]) == 10

    ours = [value for _, value in read_scalars(whole)["loss"]]
    theirs = [value for _, value in read_scalars(default)["loss"]]
    assert len(ours) == len(theirs) == 10
    np.testing.assert_allclose(ours, theirs, rtol=LOSS_TOLERANCE)


BAD_TF_CONFIGS = {
    "absent": None,
    "not JSON": "{cluster: worker}",
    "no task": json.dumps({"cluster": {"worker": ["127.0.0.1:2222"]}}),
    "index out of range": json.dumps(
        {"cluster": {"worker": ["127.0.0.1:2222"]}, "task": {"type": "worker", "index": 1}}
    ),
    "no port": json.dumps(
        {"cluster": {"worker": ["127.0.0.1"]}, "task": {"type": "worker", "index": 0}}
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TF_CONFIGS))
def test_multiworker_refuses_a_bad_tf_config_before_any_work(tmp_path, monkeypatch, case):
    value = BAD_TF_CONFIGS[case]
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    model_dir = tmp_path / "model"
    config = write_config(tmp_path / "c.json", train_csv="absent.csv", model_dir=str(model_dir))
    # The data directory does not exist either: TF_CONFIG is checked first.
    result = run(
        "train", "-p", config, "-d", str(tmp_path / "nowhere"), "--strategy", "multiworker"
    )
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR:spleeter:"), result.stderr
    assert "TF_CONFIG" in lines[0]
    assert not model_dir.exists()


def test_tf_config_check_accepts_a_cluster():
    config = {
        "cluster": {"chief": ["a:1"], "worker": ["b:2", "[::1]:3"]},
        "task": {"type": "worker", "index": 1},
    }
    assert check_tf_config({"TF_CONFIG": json.dumps(config)}) == config


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def train_two_workers(config: str, root: Path, max_steps: int, cwd: Path) -> list[str]:
    """``spleeter train --strategy multiworker`` as the two workers of a local cluster; their
    outputs."""
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        environment = {**os.environ, "TF_CONFIG": json.dumps(tf_config)}
        environment["TF_NUM_INTRAOP_THREADS"] = environment["TF_NUM_INTEROP_THREADS"] = "1"
        command = [sys.executable, "-m", "spleeter", "train", "-p", config, "-d", str(root)]
        command += ["--strategy", "multiworker", "--max-steps", str(max_steps)]
        processes.append(
            subprocess.Popen(
                command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        )
    outputs = []
    for process in processes:
        try:
            output, _ = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            raise
        outputs.append(output.decode())
        assert process.returncode == 0, output.decode()[-3000:]
    return outputs


CHECKPOINT_FILES = ("data-00000-of-00001", "index", "meta")


@pytest.mark.slow
def test_multiworker_on_two_local_workers(noise_data, tmp_path):
    """Two worker processes on 127.0.0.1 (one replica each): only the chief writes model_dir,
    its checkpoint loads and separates, and both resume from it."""
    from spleeter.separator import Separator

    root, csv = noise_data
    model_dir = tmp_path / "model"
    config = write_config(
        tmp_path / "c.json",
        train_csv=str(csv),
        validation_csv=None,
        model_dir=str(model_dir),
        batch_size=2,
        save_checkpoints_steps=2,
    )
    chief, worker = train_two_workers(config, root, 3, tmp_path)
    assert "worker 0 of 2 task(s), 2 replica(s) in all (the chief)" in chief
    assert "worker 1 of 2 task(s), 2 replica(s) in all (not the chief" in worker
    written = [f"model.ckpt-{step}.{kind}" for step in (2, 3) for kind in CHECKPOINT_FILES]
    assert files(model_dir) == [".probe", "checkpoint", *written]
    tensors = checkpoint(model_dir, 3)
    assert int(tensors["global_step"]) == 3 and "conv2d/kernel/Adam" in tensors
    chief, worker = train_two_workers(config, root, 5, tmp_path)
    assert "(step 3)" in chief and "(step 3)" in worker
    assert int(checkpoint(model_dir, 5)["global_step"]) == 5
    rng = np.random.default_rng(0)
    stems = Separator(config, multiprocess=False).separate(rng.uniform(-0.5, 0.5, (44100, 2)))
    assert sorted(stems) == ["other", "vocals"]
    assert all(np.isfinite(stem).all() for stem in stems.values())

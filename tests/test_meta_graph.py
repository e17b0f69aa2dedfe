"""The ``model.ckpt-<step>.meta`` MetaGraph that upstream's trainer wrote, written here too."""

import json
from pathlib import Path

import numpy as np


def test_meta_graph_imports_and_restores(tiny_4stems):
    import tensorflow as tf

    model_dir = Path(json.loads(Path(tiny_4stems).read_text())["model_dir"])
    prefix = str(model_dir / "model.ckpt-10")
    assert Path(f"{prefix}.meta").is_file()
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(reader.get_variable_to_shape_map())
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        saver = tf.compat.v1.train.import_meta_graph(f"{prefix}.meta")
        saver.restore(session, prefix)
        restored = {v.op.name: v for v in tf.compat.v1.global_variables()}
        assert sorted(restored) == names
        for name in names:
            np.testing.assert_array_equal(session.run(restored[name]), reader.get_tensor(name))

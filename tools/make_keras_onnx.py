"""Build the Keras-origin ONNX fixtures in tests/data/keras/: small Keras models with fixed seeds,
exported with tf2onnx, each written as <name>.onnx plus <name>.npz (`x`: a fixed input batch,
`y`: Keras's own output on it, `opset`: the ONNX opset it was exported with).

TensorFlow is not a ModelBlocks dependency, and the tests never import it: this script runs once,
in a separate virtual environment, and the fixtures it writes are committed. Versions used:

    tensorflow-cpu 2.15.1 (keras 2.15.0), tf2onnx 1.17.0, onnx 1.16.2, numpy 1.26.4, protobuf 4.25.9
    (onnx 1.19 needs a newer ml_dtypes than TF 2.15 allows, hence the pinned onnx)

Regenerate with:

    python3.11 -m venv /work/tfvenv
    /work/tfvenv/bin/pip install tensorflow-cpu==2.15.1 tf2onnx==1.17.0 onnx==1.16.2
    /work/tfvenv/bin/python tools/make_keras_onnx.py [--out tests/data/keras]

A full run writes the same bytes each time (tf2onnx numbers node names per process, so a run that
builds only some of the models names them differently, with the same weights and outputs).

The inputs are declared with a dynamic batch dimension (Keras's None, written by tf2onnx as
`unk__N`), as users' exports have it; the tests fix it from the example input.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

keras = tf.keras
layers = keras.layers


def _randomize(model: keras.Model, rng: np.random.Generator) -> None:
    """Freshly built layers have zero biases (which tf2onnx drops, hiding the Add / Conv bias that
    trained models have) and identity BatchNorms; give them trained-looking values."""
    for layer in model.layers:
        if hasattr(layer, "bias") and layer.bias is not None and not isinstance(layer, layers.BatchNormalization):
            layer.bias.assign(rng.uniform(-0.3, 0.3, layer.bias.shape).astype(np.float32))
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                               rng.uniform(-0.5, 0.5, beta.shape).astype(np.float32),
                               rng.uniform(-0.5, 0.5, mean.shape).astype(np.float32),
                               rng.uniform(0.5, 2.0, var.shape).astype(np.float32)])


def keras_cnn() -> keras.Model:
    """Conv2D (same, valid) + ReLU, BatchNormalization, MaxPooling2D, DepthwiseConv2D, SeparableConv2D,
    GlobalAveragePooling2D, Dense softmax: the usual small Keras image classifier, NHWC."""
    x = inp = keras.Input((32, 32, 3), name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(16, 3, padding="valid", activation="relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.SeparableConv2D(24, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(10, activation="softmax")(x)
    return keras.Model(inp, out, name="keras_cnn")


def keras_mlp() -> keras.Model:
    x = inp = keras.Input((20,), name="features")
    x = layers.Dense(32, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    out = layers.Dense(5, activation="softmax")(x)
    return keras.Model(inp, out, name="keras_mlp")


def keras_gru() -> keras.Model:
    """Conv1D + GRU (reset_after=True, Keras's default) + Dense over a (time, features) sequence."""
    x = inp = keras.Input((16, 4), name="sequence")
    x = layers.Conv1D(8, 3, padding="same", activation="relu")(x)
    x = layers.GRU(12, reset_after=True)(x)
    out = layers.Dense(3)(x)
    return keras.Model(inp, out, name="keras_gru")


def keras_lstm() -> keras.Model:
    x = inp = keras.Input((16, 4), name="sequence")
    x = layers.Conv1D(8, 3, padding="valid", activation="relu")(x)
    x = layers.LSTM(12)(x)
    out = layers.Dense(3, activation="softmax")(x)
    return keras.Model(inp, out, name="keras_lstm")


def keras_residual() -> keras.Model:
    """Functional API: a residual Add, Concatenate on channels, a 1x1 shortcut conv, Flatten."""
    x = inp = keras.Input((12, 12, 4), name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    y = layers.Conv2D(8, 3, padding="same")(x)
    y = layers.BatchNormalization()(y)
    x = layers.ReLU()(layers.Add()([x, y]))
    skip = layers.Conv2D(4, 1)(inp)
    x = layers.Concatenate()([x, skip])
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(8, 3, strides=2, padding="valid", activation="relu")(x)
    x = layers.Flatten()(x)
    out = layers.Dense(6)(x)
    return keras.Model(inp, out, name="keras_residual")


def keras_upsample() -> keras.Model:
    """UpSampling2D (nearest; tf2onnx writes Resize with tf_half_pixel_for_nn) between two convs."""
    x = inp = keras.Input((6, 6, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.Conv2D(4, 3, padding="valid")(x)
    x = layers.GlobalAveragePooling2D()(x)
    out = layers.Dense(3)(x)
    return keras.Model(inp, out, name="keras_upsample")


# name -> (builder, batch of the stored input, ONNX opset, run tf2onnx's graph optimizers). The opsets
# differ on purpose (Squeeze / ReduceMean axes as attributes before 13 / 18, as inputs after). The
# "_raw" fixtures skip tf2onnx's optimizers, as some export pipelines do: they keep the literal
# translation of TF's NHWC ops (a Transpose pair around every Conv, Identity nodes, ReduceMean for
# global pooling, Shape/Gather/Concat chains feeding Reshape, Cast), which ModelBlocks must clean up.
MODELS = {
    "keras_cnn": (keras_cnn, 2, 11, True),
    "keras_cnn_raw": (keras_cnn, 2, 18, False),
    "keras_mlp": (keras_mlp, 3, 11, True),
    "keras_gru": (keras_gru, 2, 13, True),
    "keras_lstm": (keras_lstm, 2, 15, True),
    "keras_residual": (keras_residual, 1, 13, True),
    "keras_residual_raw": (keras_residual, 1, 11, False),
    "keras_upsample": (keras_upsample, 1, 13, True),
}


def build(name: str, out_dir: Path, seed: int = 0) -> None:
    builder, batch, opset, optimize = MODELS[name]
    keras.backend.clear_session()  # layer names (conv2d_1, ...) restart, so the files are reproducible
    keras.utils.set_random_seed(seed)
    model = builder()
    rng = np.random.default_rng(seed)
    _randomize(model, rng)
    x = rng.standard_normal((batch,) + tuple(model.input_shape[1:])).astype(np.float32)
    y = model(x, training=False).numpy().astype(np.float32)
    spec = [tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32, name=model.input_names[0])]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset,
                                          optimizers=None if optimize else {})
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.onnx").write_bytes(proto.SerializeToString())
    np.savez_compressed(out_dir / f"{name}.npz", x=x, y=y, opset=np.int64(opset))
    ops = sorted({n.op_type for n in proto.graph.node})
    print(f"{name}: opset {opset}, {len(proto.graph.node)} nodes {ops}, "
          f"{(out_dir / f'{name}.onnx').stat().st_size} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "data" / "keras")
    parser.add_argument("names", nargs="*", default=sorted(MODELS))
    args = parser.parse_args()
    for name in args.names:
        build(name, args.out)


if __name__ == "__main__":
    main()

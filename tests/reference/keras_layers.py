"""Keras 3 reference values for microtrain's layers: SELU, weight constraints, the
activity-regularized loss and its gradients, AlphaDropout's and GaussianDropout's constants.

Run from the repository root (CPU, float32):

    KERAS_BACKEND=jax python3 tests/reference/keras_layers.py

It writes tests/reference/keras_layers.json, which tests/keras_layers.rs reads. Kernels are
written in Keras' layout, [in][out]; the Rust test transposes them into microtrain's
[out][in]. Every float is written as its float32 value (a Python float that round-trips).
"""

import json
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

assert keras.backend.backend() == "jax", "run with KERAS_BACKEND=jax"
keras.config.set_floatx("float32")


def f32_list(values):
    return [float(v) for v in np.asarray(values, dtype=np.float32).ravel()]


def f32_matrix(values):
    return [f32_list(row) for row in np.asarray(values, dtype=np.float32)]


# --- SELU: values and derivatives (jax.grad through keras.activations.selu) ----------------
selu_x = np.array(
    [-20.0, -5.0, -2.5, -1.0, -0.5, -0.125, -1e-3, -1e-6, 0.0, 1e-6, 1e-3, 0.3, 1.0, 2.0, 7.5],
    dtype=np.float32,
)
selu_y = np.asarray(keras.activations.selu(selu_x))
selu_dy = np.asarray(
    jax.vmap(jax.grad(lambda v: keras.activations.selu(v)))(jnp.asarray(selu_x))
)

# --- Constraints on fixed tensors --------------------------------------------------------
kernel = np.array(
    [
        [0.5, -1.25, 2.0, -0.0],
        [-0.75, 0.3, 1.5, 0.01],
        [1.1, -0.2, -2.2, 0.02],
    ],
    dtype=np.float32,
)  # [in=3][out=4]
bias = np.array([0.3, -0.4, 1.2, -2.0], dtype=np.float32)
constraint_cases = []


def add_case(name, constraint, params):
    constraint_cases.append(
        {
            "name": name,
            "params": params,
            "kernel": f32_matrix(constraint(jnp.asarray(kernel))),
            "bias": f32_list(constraint(jnp.asarray(bias))) if params.get("axis", 0) == 0 else None,
        }
    )


add_case("NonNeg", keras.constraints.NonNeg(), {})
for axis in (0, 1):
    add_case("UnitNorm", keras.constraints.UnitNorm(axis=axis), {"axis": axis})
for max_value, axis in ((1.5, 0), (0.5, 1)):
    add_case(
        "MaxNorm",
        keras.constraints.MaxNorm(max_value=max_value, axis=axis),
        {"max_value": max_value, "axis": axis},
    )
for min_value, max_value, rate, axis in ((0.5, 1.0, 0.75, 0), (1.0, 2.0, 1.0, 1), (2.0, 3.0, 0.5, 0)):
    add_case(
        "MinMaxNorm",
        keras.constraints.MinMaxNorm(
            min_value=min_value, max_value=max_value, rate=rate, axis=axis
        ),
        {"min_value": min_value, "max_value": max_value, "rate": rate, "axis": axis},
    )

# --- AlphaDropout and GaussianDropout constants ---------------------------------------------
alpha_cases = []
for rate in (0.125, 0.25, 0.5):
    layer = keras.layers.AlphaDropout(rate, seed=1)
    # Keras' own formula (alpha_dropout.py), in Python floats as the layer computes it.
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946
    alpha_p = -alpha * scale
    a = ((1 - rate) * (1 + rate * alpha_p**2)) ** -0.5
    b = -a * alpha_p * rate
    # Inputs far from the dropped value, so that kept and dropped outputs are told apart.
    x = (10.0 + np.arange(256, dtype=np.float32) / 8.0).reshape(4, 64)
    y = np.asarray(layer(x, training=True))
    kept_expected = np.float32(a) * x + np.float32(b)
    kept = np.isclose(y, kept_expected, rtol=1e-6, atol=0)
    dropped_values = np.unique(y[~kept])
    assert dropped_values.size == 1, dropped_values
    alpha_cases.append(
        {
            "rate": rate,
            "a": float(np.float32(a)),
            "b": float(np.float32(b)),
            "dropped_value": float(dropped_values[0]),
            "inputs": f32_list(x[kept][:16]),
            "kept_outputs": f32_list(y[kept][:16]),
            "dropped_fraction": float((~kept).mean()),
        }
    )
gaussian_dropout = [
    {"rate": rate, "stddev": float(np.float32(np.sqrt(rate / (1.0 - rate))))}
    for rate in (0.1, 0.2, 0.5, 0.75)
]

# --- Activity regularization: a tiny model's loss and gradients ----------------------------
rng = np.random.default_rng(13)
x = rng.uniform(-1.0, 1.0, size=(5, 3)).astype(np.float32)
y = rng.uniform(0.0, 1.0, size=(5, 2)).astype(np.float32)
l1, l2, l2_second = 0.01, 0.02, 0.03
inputs = keras.Input(shape=(3,))
h1 = keras.layers.Dense(
    4,
    activation="tanh",
    activity_regularizer=keras.regularizers.L1L2(l1=l1, l2=l2),
    name="first",
)(inputs)
h2 = keras.layers.Dense(
    3, activation="selu", activity_regularizer=keras.regularizers.L2(l2_second), name="second"
)(h1)
out = keras.layers.Dense(2, activation="sigmoid", name="output")(h2)
model = keras.Model(inputs, out)
weights = []
for layer in model.layers[1:]:
    w_in_out = rng.uniform(-0.9, 0.9, size=layer.kernel.shape).astype(np.float32)
    b = rng.uniform(-0.3, 0.3, size=layer.bias.shape).astype(np.float32)
    layer.set_weights([w_in_out, b])
    weights.append({"kernel": f32_matrix(w_in_out), "bias": f32_list(b)})
model.compile(optimizer="sgd", loss="mse")

trainable = [v.value for v in model.trainable_variables]
non_trainable = [v.value for v in model.non_trainable_variables]
mse = keras.losses.MeanSquaredError()


def total_loss(trainable_values, batch_x, batch_y):
    predictions, _, losses = model.stateless_call(
        trainable_values, non_trainable, batch_x, training=True, return_losses=True
    )
    return mse(batch_y, predictions) + sum(losses), (mse(batch_y, predictions), losses)


def loss_and_gradients(rows):
    (total, (data_loss, losses)), grads = jax.value_and_grad(total_loss, has_aux=True)(
        trainable, jnp.asarray(x[:rows]), jnp.asarray(y[:rows])
    )
    return {
        "rows": rows,
        "loss": float(total),
        "data_loss": float(data_loss),
        "activity_losses": [float(v) for v in losses],
        # Keras order: first.kernel, first.bias, second.kernel, ..., kernels [in][out].
        "gradients": [
            f32_matrix(g) if g.ndim == 2 else f32_list(g) for g in grads
        ],
    }


activity = {
    "l1": l1,
    "l2": l2,
    "l2_second": l2_second,
    "x": f32_matrix(x),
    "y": f32_matrix(y),
    "weights": weights,
    "batches": [loss_and_gradients(5), loss_and_gradients(3)],
    # Keras' evaluate includes the activity terms; with batches of 2 the last batch has one
    # sample, and the batch-size-weighted mean makes the result that of per-sample terms.
    "evaluate_batch_5": float(model.evaluate(x, y, batch_size=5, verbose=0)),
    "evaluate_batch_2": float(model.evaluate(x, y, batch_size=2, verbose=0)),
}

result = {
    "versions": {
        "keras": keras.__version__,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "backend": keras.backend.backend(),
        "floatx": keras.config.floatx(),
        "device": str(jax.devices()[0].platform),
    },
    "selu": {
        "alpha": 1.6732632423543772848170429916717,
        "scale": 1.0507009873554804934193349852946,
        "x": f32_list(selu_x),
        "y": f32_list(selu_y),
        "derivative": f32_list(selu_dy),
    },
    "constraints": {"kernel": f32_matrix(kernel), "bias": f32_list(bias), "cases": constraint_cases},
    "alpha_dropout": alpha_cases,
    "gaussian_dropout": gaussian_dropout,
    "activity": activity,
}
path = pathlib.Path(__file__).with_suffix(".json")
path.write_text(json.dumps(result, indent=1) + "\n")
print(f"wrote {path}")

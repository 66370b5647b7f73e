"""Keras 3 reference values for microtrain's losses, label smoothing and sample/class weights.

    KERAS_BACKEND=jax JAX_PLATFORMS=cpu python3 tests/reference/keras_losses.py

writes tests/reference/keras_losses.json (read by tests/keras_losses.rs), float32 on the CPU:

- per-row values of every cross-entropy x from_logits x label_smoothing case, and their
  gradients with respect to the logits (jax.grad of the per-row loss), on rows that include
  confident mistakes;
- what a Keras model Dense(softmax) + categorical_crossentropy reports on a confident mistake
  with this backend (it clamps the probabilities);
- 20 full-batch SGD steps of a small Dense model with sample weights, then with class
  weights, starting from weights drawn here, with the per-epoch loss Keras reports, the final
  weights and `evaluate(sample_weight=...)`.
"""

import json
import os
import pathlib
import platform

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

assert keras.backend.backend() == "jax", "run with KERAS_BACKEND=jax"
keras.config.set_floatx("float32")

F32 = np.float32


def f32(x):
    """Python floats of float32 values: JSON keeps them exactly (repr round-trips)."""
    return np.asarray(x, dtype=F32).tolist()


def per_row(loss_fn, rows, targets):
    """Values of loss_fn per row and their gradients w.r.t. the rows (rows are independent,
    so the gradient of the sum is each row's own gradient)."""
    rows = jnp.asarray(rows, dtype=jnp.float32)
    values = loss_fn(targets, rows)
    grads = jax.grad(lambda z: jnp.sum(loss_fn(targets, z)))(rows)
    return f32(values), f32(grads)


# Logits of three classes: moderate, confident mistakes, confident hits, a tie.
LOGITS = np.array(
    [
        [1.0, 2.0, 0.5],
        [100.0, -100.0, 0.0],
        [-3.25, 0.75, 2.875],
        [20.0, -20.0, 5.0],
        [0.0, 0.0, 0.0],
        [-7.5, 12.0, 3.0],
    ],
    dtype=F32,
)
LABELS = np.array([1, 1, 2, 0, 2, 0], dtype=np.int32)
ONE_HOT = np.eye(3, dtype=F32)[LABELS]
# One probability target among the one-hot ones.
SOFT = ONE_HOT.copy()
SOFT[2] = np.array([0.25, 0.25, 0.5], dtype=F32)

# Two binary outputs per row (the loss is their mean).
BINARY_LOGITS = np.array(
    [[-30.0, 5.0], [0.5, -0.5], [100.0, -100.0], [2.0, 3.0], [-5.0, 0.0], [17.0, -17.0]],
    dtype=F32,
)
BINARY_TARGETS = np.array(
    [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.25, 0.0], [1.0, 0.0]], dtype=F32
)

SMOOTHING = [0.0, 0.1, 0.3]
losses = keras.losses
cases = []

for ls in SMOOTHING:
    ls32 = float(F32(ls))
    for from_logits in [True, False]:
        for name, targets in [("categorical", ONE_HOT), ("categorical_soft", SOFT)]:
            fn = lambda t, z, fl=from_logits, ls32=ls32: losses.categorical_crossentropy(
                t, z if fl else jax.nn.softmax(z), from_logits=fl, label_smoothing=ls32
            )
            values, grads = per_row(fn, LOGITS, targets)
            cases.append(
                dict(loss=name, from_logits=from_logits, label_smoothing=ls32,
                     logits=f32(LOGITS), targets=f32(targets), values=values, grads=grads)
            )
        fn = lambda t, z, fl=from_logits, ls32=ls32: losses.binary_crossentropy(
            t, z if fl else jax.nn.sigmoid(z), from_logits=fl, label_smoothing=ls32
        )
        values, grads = per_row(fn, BINARY_LOGITS, BINARY_TARGETS)
        cases.append(
            dict(loss="binary", from_logits=from_logits, label_smoothing=ls32,
                 logits=f32(BINARY_LOGITS), targets=f32(BINARY_TARGETS),
                 probabilities=f32(jax.nn.sigmoid(jnp.asarray(BINARY_LOGITS))),
                 values=values, grads=grads)
        )

# Sparse: Keras 3 has no label_smoothing for it.
for from_logits in [True, False]:
    fn = lambda t, z, fl=from_logits: losses.sparse_categorical_crossentropy(
        t, z if fl else jax.nn.softmax(z), from_logits=fl
    )
    values, grads = per_row(fn, LOGITS, LABELS)
    cases.append(
        dict(loss="sparse", from_logits=from_logits, label_smoothing=0.0,
             logits=f32(LOGITS), targets=LABELS.tolist(), values=values, grads=grads)
    )

# What a Keras model reports on a confident mistake with this backend: Dense(3, softmax) with
# zero kernel and bias [100, -100, 0], label 1.
mistake = keras.Sequential([keras.Input((1,)), keras.layers.Dense(3, activation="softmax")])
mistake.set_weights([np.zeros((1, 3), F32), np.array([100.0, -100.0, 0.0], F32)])
mistake.compile(loss="categorical_crossentropy")
keras_model_mistake = float(
    mistake.evaluate(np.zeros((1, 1), F32), np.array([[0.0, 1.0, 0.0]], F32), verbose=0)
)

# Weighted training: Dense(4 -> 5, tanh) -> Dense(5 -> 3, softmax), SGD(0.1), 20 steps of one
# full batch of 8 (no shuffling), sparse categorical cross-entropy.
rng = np.random.default_rng(13)
X = rng.normal(size=(8, 4)).astype(F32)
Y = np.array([0, 1, 2, 0, 1, 2, 2, 0], dtype=np.int32)
SAMPLE_WEIGHTS = np.array([1.0, 0.5, 2.0, 0.0, 1.5, 1.0, 0.25, 3.0], dtype=F32)
CLASS_WEIGHTS = {0: 1.0, 1: 4.0, 2: 0.5}
INITIAL = [
    rng.uniform(-0.8, 0.8, size=(4, 5)).astype(F32),
    rng.uniform(-0.1, 0.1, size=(5,)).astype(F32),
    rng.uniform(-0.8, 0.8, size=(5, 3)).astype(F32),
    rng.uniform(-0.1, 0.1, size=(3,)).astype(F32),
]
LEARNING_RATE = 0.1
STEPS = 20


def train(**weights):
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(5, activation="tanh"),
         keras.layers.Dense(3, activation="softmax")]
    )
    model.set_weights(INITIAL)
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(X, Y, batch_size=8, epochs=STEPS, shuffle=False, verbose=0, **weights)
    evaluated = model.evaluate(X, Y, batch_size=8, verbose=0, return_dict=True,
                               sample_weight=weights.get("sample_weight"))
    return dict(
        losses=f32(history.history["loss"]),
        accuracy=f32(history.history["accuracy"]),
        final=[f32(w) for w in model.get_weights()],
        evaluate_loss=float(F32(evaluated["loss"])),
        evaluate_accuracy=float(F32(evaluated["accuracy"])),
    )


runs = dict(
    sample_weights=train(sample_weight=SAMPLE_WEIGHTS),
    class_weights=train(class_weight=CLASS_WEIGHTS),
)

out = dict(
    versions=dict(
        keras=keras.__version__, jax=jax.__version__, numpy=np.__version__,
        python=platform.python_version(), backend=keras.backend.backend(),
        device=str(jax.devices()[0].platform), floatx=keras.config.floatx(),
    ),
    epsilon=keras.config.epsilon(),
    cases=cases,
    keras_model_confident_mistake=keras_model_mistake,
    training=dict(
        x=f32(X), y=Y.tolist(), sample_weights=f32(SAMPLE_WEIGHTS),
        class_weights=[CLASS_WEIGHTS[k] for k in range(3)],
        initial=[f32(w) for w in INITIAL], learning_rate=LEARNING_RATE, steps=STEPS,
        runs=runs,
    ),
)
path = pathlib.Path(__file__).with_suffix(".json")
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}: {len(cases)} loss cases, Keras/JAX model on a confident mistake: "
      f"{keras_model_mistake}")

"""Keras 3 on JAX (CPU, one thread): the tutorial's 10 epochs, timed as
`microtrain-mlp tutorial` times microtrain's `Trainer::fit`, for ratios taken in one sitting:

    python3 benches/peers/keras_tutorial.py [--blocks 7]

The model: 30 -> 64 relu (kernel_regularizer l2(0.01)) -> Dropout(0.5) -> 1 sigmoid, binary
cross-entropy, Adam with Keras' defaults, batches of 32 reshuffled each epoch, 10 epochs over
455 synthetic samples (the breast-cancer training split's shape: N(0, 1) features, labels of a
linear rule with 10 % flipped; a step's work does not depend on the values). `fit` is called
once before timing so that its XLA compilation (several seconds) is excluded, as the compile
of the Rust program is; each timed run then resets the weights and calls `fit(epochs=10)`.
Prints one JSON line with the median and best milliseconds per 10-epoch fit and the versions.
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
# One thread, as the Rust programs: XLA's CPU client without its Eigen thread pool.
os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
)
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

SAMPLES = 455
FEATURES = 30


def data(seed=4):
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(FEATURES).astype(np.float32)
    x = rng.standard_normal((SAMPLES, FEATURES)).astype(np.float32)
    flip = rng.integers(0, 10, SAMPLES) == 0
    y = ((x @ direction > 0) != flip).astype(np.float32).reshape(-1, 1)
    return x, y


def model():
    m = keras.Sequential(
        [
            keras.Input((FEATURES,)),
            keras.layers.Dense(64, activation="relu", kernel_regularizer=keras.regularizers.l2(0.01)),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    m.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy", metrics=["accuracy"])
    return m


def threads():
    """Threads of this process (Linux): what XLA's flags left running."""
    try:
        with open("/proc/self/status") as f:
            return int(next(l for l in f if l.startswith("Threads:")).split()[1])
    except (OSError, StopIteration, ValueError):
        return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--blocks", type=int, default=7)
    parser.add_argument("--runs", type=int, default=5, help="10-epoch fits per block")
    args = parser.parse_args()
    x, y = data()
    m = model()
    initial = m.get_weights()
    t = time.perf_counter()
    m.fit(x, y, batch_size=32, epochs=1, shuffle=True, verbose=0)  # compiles
    compile_s = time.perf_counter() - t
    ms = []
    for _ in range(args.blocks):
        total = 0.0
        for _ in range(args.runs):
            m.set_weights(initial)
            t = time.perf_counter()
            history = m.fit(x, y, batch_size=32, epochs=10, shuffle=True, verbose=0)
            total += time.perf_counter() - t
        ms.append(1e3 * total / args.runs)
    ms.sort()
    print(
        json.dumps(
            {
                "framework": f"keras {keras.__version__} (jax {jax.__version__}, CPU, 1 thread)",
                "task": "tutorial_10_epochs",
                "fit_ms_median": round(statistics.median(ms), 3),
                "fit_ms_best": round(ms[0], 3),
                "first_fit_s_with_compile": round(compile_s, 2),
                "final_train_loss": round(float(history.history["loss"][-1]), 4),
                "numpy": np.__version__,
                "xla_flags": os.environ.get("XLA_FLAGS", ""),
                "threads_at_end": threads(),
            }
        )
    )


if __name__ == "__main__":
    main()

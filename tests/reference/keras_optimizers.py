"""Reference values for microtrain's optimizers and learning-rate schedules, from Keras 3.

Run from the repository root (CPU, float32; about a minute):

    KERAS_BACKEND=jax python3 tests/reference/keras_optimizers.py

writes tests/reference/keras_optimizers.json, which tests/keras_optimizers.rs reads. Every
number is computed here by Keras (or, for the "f64" runs, by the same formulas in numpy
float64, the exact arithmetic Keras' float32 approximates); none is typed in by hand.

- "powers": ops.power(float32(beta), float32(t)), as Adam's bias corrections evaluate it.
- "schedules": each schedule's learning rate at a list of steps, evaluated op by op
  ("values") and under jax.jit ("values_jit": XLA's simplifier reassociates, e.g. the
  warmup's a * (b / c) becomes (a * b) / c). XLA's CPU kernels flush subnormal results to
  zero.
- "runs": 20 steps of an optimizer on two variables named "kernel" (2 x 3) and "bias" (2),
  from fixed initial values, with fixed gradients (the same for every optimizer), applied
  with optimizer.apply_gradients op by op ("weights": Keras' arithmetic as its source
  writes it) and inside jax.jit as model.fit runs it ("weights_jit": XLA fuses the update
  into one loop, which rounds a few values differently in the last bit). The runs whose
  names say "weight_decay" (and "adamw_exclude_bias") use Keras' `weight_decay` argument,
  some with `exclude_from_weight_decay(var_names=["bias"])`, on every optimizer and with a
  schedule. Values are float32 stored as JSON numbers (exact: a float32 is a float64, and
  Python writes the shortest repr that reads back the same float64).
"""

import json
import os
import platform

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import optimizers  # noqa: E402
from keras.optimizers import schedules  # noqa: E402

assert keras.backend.backend() == "jax"
jax.config.update("jax_platforms", "cpu")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_optimizers.json")
STEPS = 20
rng = np.random.default_rng(2024)
KERNEL0 = rng.normal(0.0, 0.5, size=(2, 3)).astype(np.float32)
BIAS0 = rng.normal(0.0, 0.1, size=(2,)).astype(np.float32)
# Gradients of varied scale, so that the moments see small and large values.
SCALES = np.float32(10.0) ** rng.integers(-3, 2, size=(STEPS, 1)).astype(np.float32)
GRADS_KERNEL = (rng.normal(size=(STEPS, 2, 3)) * SCALES[:, :, None]).astype(np.float32)
GRADS_BIAS = (rng.normal(size=(STEPS, 2)) * SCALES).astype(np.float32)


def number(x):
    """A float32 as a JSON number, or "inf"/"-inf"/"nan" (JSON has no such numbers)."""
    x = float(x)
    return x if np.isfinite(x) else repr(x)


def floats(a):
    return [number(x) for x in np.asarray(a, dtype=np.float32).ravel()]


def run(make, jit=True):
    """Weights after each of STEPS steps of the optimizer `make()` builds."""
    kernel = keras.Variable(KERNEL0, name="kernel")
    bias = keras.Variable(BIAS0, name="bias")
    opt = make()
    variables = [kernel, bias]
    opt.build(variables)
    trajectory = []
    if jit:
        opt_vars = [v.value for v in opt.variables]

        @jax.jit
        def apply(opt_vars, train_vars, grads):
            return opt.stateless_apply(opt_vars, grads, train_vars)

        train_vars = [kernel.value, bias.value]
        for t in range(STEPS):
            grads = [GRADS_KERNEL[t], GRADS_BIAS[t]]
            train_vars, opt_vars = apply(opt_vars, train_vars, grads)
            trajectory.append(floats(train_vars[0]) + floats(train_vars[1]))
    else:
        for t in range(STEPS):
            opt.apply_gradients(zip([GRADS_KERNEL[t], GRADS_BIAS[t]], variables))
            trajectory.append(floats(kernel.value) + floats(bias.value))
    return trajectory


def adam_f64(lr, beta_1, beta_2, epsilon, weight_decay=None, exclude_bias=False):
    """Keras' Adam (and AdamW: Adam with the base optimizer's weight decay) in float64."""
    ws = [KERNEL0.astype(np.float64), BIAS0.astype(np.float64)]
    ms = [np.zeros_like(w) for w in ws]
    vs = [np.zeros_like(w) for w in ws]
    trajectory = []
    for t in range(1, STEPS + 1):
        grads = [GRADS_KERNEL[t - 1].astype(np.float64), GRADS_BIAS[t - 1].astype(np.float64)]
        for k in range(2):
            if weight_decay is not None and not (exclude_bias and k == 1):
                ws[k] = ws[k] - ws[k] * weight_decay * lr
            alpha = lr * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
            ms[k] = ms[k] + (grads[k] - ms[k]) * (1 - beta_1)
            vs[k] = vs[k] + (grads[k] ** 2 - vs[k]) * (1 - beta_2)
            ws[k] = ws[k] - ms[k] * alpha / (np.sqrt(vs[k]) + epsilon)
        trajectory.append([float(x) for x in np.concatenate([w.ravel() for w in ws])])
    return trajectory


def adamw_excluding_bias():
    opt = optimizers.AdamW(learning_rate=0.01, weight_decay=0.1)
    opt.exclude_from_weight_decay(var_names=["bias"])
    return opt


def excluding_bias(make):
    """`make` with the bias excluded from its weight decay."""

    def build():
        opt = make()
        opt.exclude_from_weight_decay(var_names=["bias"])
        return opt

    return build


RUNS = {
    "adam": (lambda: optimizers.Adam(learning_rate=0.01), adam_f64(0.01, 0.9, 0.999, 1e-7)),
    "adam_betas": (
        lambda: optimizers.Adam(learning_rate=0.003, beta_1=0.8, beta_2=0.99, epsilon=1e-6),
        adam_f64(0.003, 0.8, 0.99, 1e-6),
    ),
    "adamw_exclude_bias": (
        adamw_excluding_bias,
        adam_f64(0.01, 0.9, 0.999, 1e-7, weight_decay=0.1, exclude_bias=True),
    ),
    "adam_exponential_decay": (
        lambda: optimizers.Adam(
            learning_rate=schedules.ExponentialDecay(0.01, decay_steps=5, decay_rate=0.5)
        ),
        None,
    ),
    "sgd": (lambda: optimizers.SGD(learning_rate=0.05), None),
    "sgd_weight_decay": (lambda: optimizers.SGD(learning_rate=0.05, weight_decay=0.1), None),
    "sgd_momentum": (lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9), None),
    "sgd_nesterov": (
        lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
        None,
    ),
    "rmsprop": (lambda: optimizers.RMSprop(learning_rate=0.01), None),
    "rmsprop_momentum": (lambda: optimizers.RMSprop(learning_rate=0.01, momentum=0.9), None),
    "rmsprop_centered": (
        lambda: optimizers.RMSprop(learning_rate=0.01, rho=0.8, centered=True, epsilon=1e-6),
        None,
    ),
    "adagrad": (lambda: optimizers.Adagrad(learning_rate=0.05), None),
    "adagrad_zero_start": (
        lambda: optimizers.Adagrad(learning_rate=0.05, initial_accumulator_value=0.0),
        None,
    ),
    "nadam": (lambda: optimizers.Nadam(learning_rate=0.01), None),
    "sgd_momentum_weight_decay_exclude_bias": (
        excluding_bias(
            lambda: optimizers.SGD(learning_rate=0.05, momentum=0.9, weight_decay=0.5)
        ),
        None,
    ),
    "adam_weight_decay": (lambda: optimizers.Adam(learning_rate=0.01, weight_decay=0.5), None),
    "adam_exponential_decay_weight_decay_exclude_bias": (
        excluding_bias(
            lambda: optimizers.Adam(
                learning_rate=schedules.ExponentialDecay(0.01, decay_steps=5, decay_rate=0.5),
                weight_decay=0.5,
            )
        ),
        None,
    ),
    "rmsprop_weight_decay": (
        lambda: optimizers.RMSprop(learning_rate=0.01, momentum=0.9, weight_decay=0.5),
        None,
    ),
    "adagrad_weight_decay_exclude_bias": (
        excluding_bias(lambda: optimizers.Adagrad(learning_rate=0.05, weight_decay=0.5)),
        None,
    ),
    "nadam_weight_decay": (
        lambda: optimizers.Nadam(learning_rate=0.01, weight_decay=0.5),
        None,
    ),
}

STEPS_AT = [0, 1, 2, 3, 4, 5, 7, 10, 33, 50, 99, 100, 101, 149, 150, 151, 199, 200, 201, 250,
            299, 300, 301, 1000, 12345, 100000, 2**24 + 1, 10**9]
SCHEDULES = {
    "exponential": (dict(initial_learning_rate=0.1, decay_steps=100, decay_rate=0.96),
                    lambda c: schedules.ExponentialDecay(**c)),
    "exponential_staircase": (dict(initial_learning_rate=0.1, decay_steps=7, decay_rate=0.5,
                                   staircase=True),
                              lambda c: schedules.ExponentialDecay(**c)),
    "exponential_growth": (dict(initial_learning_rate=1e-3, decay_steps=1000, decay_rate=1.5),
                           lambda c: schedules.ExponentialDecay(**c)),
    "piecewise": (dict(boundaries=[100, 200, 300], values=[0.1, 0.05, 0.01, 0.001]),
                  lambda c: schedules.PiecewiseConstantDecay(**c)),
    "inverse_time": (dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5),
                     lambda c: schedules.InverseTimeDecay(**c)),
    "inverse_time_staircase": (dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5,
                                    staircase=True),
                               lambda c: schedules.InverseTimeDecay(**c)),
    "polynomial": (dict(initial_learning_rate=0.1, decay_steps=200),
                   lambda c: schedules.PolynomialDecay(**c)),
    "polynomial_power": (dict(initial_learning_rate=0.1, decay_steps=150, end_learning_rate=0.001,
                              power=0.5),
                         lambda c: schedules.PolynomialDecay(**c)),
    "polynomial_cycle": (dict(initial_learning_rate=0.1, decay_steps=150, end_learning_rate=0.01,
                              power=2.0, cycle=True),
                         lambda c: schedules.PolynomialDecay(**c)),
    "cosine": (dict(initial_learning_rate=0.1, decay_steps=300),
               lambda c: schedules.CosineDecay(**c)),
    "cosine_alpha": (dict(initial_learning_rate=0.1, decay_steps=300, alpha=0.1),
                     lambda c: schedules.CosineDecay(**c)),
    "cosine_warmup": (dict(initial_learning_rate=0.0, decay_steps=250, alpha=0.05,
                           warmup_target=0.1, warmup_steps=50),
                      lambda c: schedules.CosineDecay(**c)),
    "cosine_warmup_from": (dict(initial_learning_rate=0.01, decay_steps=200,
                                warmup_target=0.1, warmup_steps=100),
                           lambda c: schedules.CosineDecay(**c)),
}

BETAS = [0.9, 0.999, 0.99, 0.95, 0.8, 0.5, 0.9999, 0.96]
POWER_STEPS = list(range(1, 101)) + [150, 171, 200, 500, 1000, 2000, 5000, 10000, 17000, 18000,
                                     50000, 87000, 100000, 1000000, 16777216]


def main():
    out = {
        "versions": {
            "keras": keras.__version__,
            "jax": jax.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "libc": " ".join(platform.libc_ver()),
        },
        "steps": STEPS,
        "kernel": floats(KERNEL0),
        "bias": floats(BIAS0),
        "grads": [floats(GRADS_KERNEL[t]) + floats(GRADS_BIAS[t]) for t in range(STEPS)],
        "powers": {},
        "schedules": {},
        "runs": {},
    }
    power = jax.jit(lambda b, t: keras.ops.power(b, t))
    for beta in BETAS:
        t = np.array(POWER_STEPS, dtype=np.float32)
        values = np.asarray(power(np.float32(beta), t))
        out["powers"][repr(beta)] = {"steps": POWER_STEPS, "values": floats(values)}
    for name, (config, make) in SCHEDULES.items():
        schedule = make(config)
        values = [number(np.asarray(schedule(np.int64(s)))) for s in STEPS_AT]
        jitted = [number(np.asarray(jax.jit(schedule)(np.int64(s)))) for s in STEPS_AT]
        out["schedules"][name] = {
            "config": config,
            "steps": STEPS_AT,
            "values": values,
            "values_jit": jitted,
        }
    for name, (make, f64) in RUNS.items():
        entry = {"weights": run(make, jit=False), "weights_jit": run(make, jit=True)}
        if f64 is not None:
            entry["f64"] = f64
        out["runs"][name] = entry
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1, allow_nan=False)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()

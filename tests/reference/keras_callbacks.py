"""Keras 3's EarlyStopping and ReduceLROnPlateau driven on scripted metric sequences.

    KERAS_BACKEND=jax python3 tests/reference/keras_callbacks.py

writes tests/reference/keras_callbacks.json, which tests/callbacks.rs replays through
microtrain's decision logic. The callbacks are Keras' own classes, attached to a real
(one-weight) compiled model with a real SGD optimizer, and called as `model.fit` calls them:
`on_train_begin`, then `on_epoch_end(epoch, logs)` per epoch until `model.stop_training`,
then `on_train_end`. Before each epoch's `on_epoch_end` the model's weight is set to
`epoch + 1`, so the weight left after `on_train_end` names the epoch it came from (the last
one, or the one EarlyStopping restored).

Every number handed to Keras is an f32 value (logs are Python floats holding f32 values in a
real `fit`; `min_delta`, `baseline`, `factor` and `min_lr` are given as the f32 nearest to
the decimal, which is what a microtrain configuration holds).
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_callbacks.json")


def f32(x):
    return float(np.float32(x))


def model_with(lr):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=lr),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    # Builds the compiled metrics, so that mode "auto" finds accuracy's direction.
    x = np.zeros((2, 1), np.float32)
    model.evaluate(x, np.zeros((2, 1), np.float32), verbose=0)
    return model


def tag(model, epoch):
    model.set_weights([np.full((1, 1), epoch + 1, np.float32)])


def read_tag(model):
    return int(model.get_weights()[0][0, 0]) - 1


def drive(callback, model, monitor, values):
    """Runs `callback` as fit does on the monitored `values`; returns epochs run."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    epochs = 0
    for epoch, value in enumerate(values):
        tag(model, epoch)
        callback.on_epoch_end(epoch, {monitor: f32(value)})
        epochs = epoch + 1
        if model.stop_training:
            break
    callback.on_train_end()
    return epochs


def early_stopping_case(name, monitor, values, **kwargs):
    for key in ("min_delta", "baseline"):
        if kwargs.get(key) is not None:
            kwargs[key] = f32(kwargs[key])
    model = model_with(0.01)
    callback = keras.callbacks.EarlyStopping(monitor=monitor, **kwargs)
    epochs = drive(callback, model, monitor, values)
    weights_from = read_tag(model)
    return {
        "name": name,
        "monitor": monitor,
        "values": [f32(v) for v in values],
        "mode": kwargs.get("mode", "auto"),
        "min_delta": kwargs.get("min_delta", 0.0),
        "patience": kwargs.get("patience", 0),
        "baseline": kwargs.get("baseline"),
        "start_from_epoch": kwargs.get("start_from_epoch", 0),
        "restore_best_weights": kwargs.get("restore_best_weights", False),
        "greater_is_better": callback.monitor_op == keras.ops.greater,
        "epochs_run": epochs,
        # Keras' attribute: the epoch that stopped the run, 0 when none did.
        "stopped_epoch": callback.stopped_epoch,
        "stopped": bool(model.stop_training),
        "best_epoch": callback.best_epoch,
        "wait": callback.wait,
        # The epoch whose weights the model holds after on_train_end.
        "weights_from_epoch": weights_from,
    }


def plateau_case(name, monitor, values, lr, **kwargs):
    # Keras' defaults for factor and min_delta are the doubles 0.1 and 1e-4; microtrain's
    # are the f32 values nearest to them, which Keras is given here too.
    kwargs.setdefault("factor", 0.1)
    kwargs.setdefault("min_delta", 1e-4)
    for key in ("min_delta", "factor", "min_lr"):
        if key in kwargs:
            kwargs[key] = f32(kwargs[key])
    lr = f32(lr)
    model = model_with(lr)
    callback = keras.callbacks.ReduceLROnPlateau(monitor=monitor, **kwargs)
    callback.set_model(model)
    callback.on_train_begin()
    rates = []
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {monitor: f32(value)})
        rates.append(float(np.asarray(model.optimizer.learning_rate)))
    callback.on_train_end()
    return {
        "name": name,
        "monitor": monitor,
        "values": [f32(v) for v in values],
        "learning_rate": lr,
        "mode": kwargs.get("mode", "auto"),
        "factor": kwargs["factor"],
        "patience": kwargs.get("patience", 10),
        "min_delta": kwargs["min_delta"],
        "cooldown": kwargs.get("cooldown", 0),
        "min_lr": kwargs.get("min_lr", 0.0),
        "greater_is_better": callback.monitor_op == keras.ops.greater,
        # The optimizer's learning rate after each epoch's on_epoch_end.
        "rates_after_epoch": rates,
    }


FALL_THEN_FLAT = [1.0, 0.8, 0.7, 0.69, 0.695, 0.7, 0.71, 0.72, 0.73, 0.74]
NOISY = [0.9, 0.85, 0.86, 0.84, 0.845, 0.843, 0.85, 0.83, 0.831, 0.832, 0.833, 0.834]
RISING_ACCURACY = [0.5, 0.6, 0.7, 0.7, 0.72, 0.71, 0.7, 0.69, 0.68, 0.67]
# Just below 0.5 by one f32 ulp; + 2^-26 ties to 0.5 in f32 (not below it) though it is in f64.
BELOW_HALF = float(np.nextafter(np.float32(0.5), np.float32(0)))
TIE = [0.5, BELOW_HALF, BELOW_HALF, BELOW_HALF, BELOW_HALF]


def early_stopping_cases():
    es = early_stopping_case
    return [
        es("patience_2", "val_loss", FALL_THEN_FLAT, patience=2),
        es("patience_0", "val_loss", FALL_THEN_FLAT, patience=0),
        es("patience_0_restore", "val_loss", FALL_THEN_FLAT, patience=0, restore_best_weights=True),
        es("patience_3_restore", "val_loss", FALL_THEN_FLAT, patience=3, restore_best_weights=True),
        es("no_stop_restore", "loss", FALL_THEN_FLAT, patience=20, restore_best_weights=True),
        es("no_stop_no_restore", "loss", FALL_THEN_FLAT, patience=20),
        es("min_delta_noisy", "val_loss", NOISY, patience=2, min_delta=0.01),
        es("min_delta_noisy_restore", "val_loss", NOISY, patience=2, min_delta=0.01,
           restore_best_weights=True),
        es("min_delta_small", "val_loss", NOISY, patience=3, min_delta=0.001,
           restore_best_weights=True),
        es("negative_min_delta", "loss", NOISY, patience=2, min_delta=-0.01),
        es("baseline_never_beaten", "val_loss", NOISY, patience=3, baseline=0.5,
           restore_best_weights=True),
        es("baseline_never_beaten_patience_0", "val_loss", NOISY, patience=0, baseline=0.5,
           restore_best_weights=True),
        es("baseline_beaten_late", "val_loss", FALL_THEN_FLAT, patience=1, baseline=0.75,
           restore_best_weights=True),
        es("baseline_improving_never_beaten", "val_loss", [1.0, 0.9, 0.8, 0.7, 0.6, 0.55],
           patience=1, baseline=0.5, restore_best_weights=True),
        es("start_from_epoch", "val_loss", [0.3, 0.2, 1.0, 0.9, 0.95, 0.96, 0.97, 0.91],
           patience=2, start_from_epoch=2, restore_best_weights=True),
        es("start_from_epoch_past_the_end", "val_loss", FALL_THEN_FLAT, patience=1,
           start_from_epoch=20, restore_best_weights=True),
        es("accuracy_auto", "accuracy", RISING_ACCURACY, patience=2, restore_best_weights=True),
        es("val_accuracy_auto_min_delta", "val_accuracy", RISING_ACCURACY, patience=2,
           min_delta=0.015, restore_best_weights=True),
        es("accuracy_mode_min", "accuracy", RISING_ACCURACY, patience=2, mode="min"),
        es("loss_mode_max", "val_loss", FALL_THEN_FLAT, patience=3, mode="max",
           restore_best_weights=True),
        es("ties_do_not_improve", "val_loss", [0.5, 0.5, 0.5, 0.4, 0.4, 0.4], patience=1),
        es("f32_rounding_of_min_delta", "val_loss", TIE, patience=1, min_delta=2.0**-26),
    ]


def plateau_cases():
    pl = plateau_case
    long_flat = [1.0, 0.9] + [0.9] * 14
    return [
        pl("factor_half_patience_2", "val_loss", FALL_THEN_FLAT, 0.01, factor=0.5, patience=2),
        pl("keras_defaults_patience_3", "val_loss", long_flat, 0.001, patience=3),
        pl("patience_0", "val_loss", FALL_THEN_FLAT, 0.01, factor=0.5, patience=0),
        pl("cooldown_2", "val_loss", long_flat, 0.01, factor=0.5, patience=1, cooldown=2),
        pl("cooldown_improvement_during", "loss",
           [1.0, 1.0, 1.0, 0.5, 0.6, 0.6, 0.4, 0.6, 0.6, 0.6, 0.6], 0.01,
           factor=0.5, patience=1, cooldown=3),
        pl("min_lr_floor", "val_loss", long_flat, 0.01, factor=0.1, patience=1, min_lr=3e-5),
        pl("min_lr_reached_exactly", "val_loss", long_flat, 0.01, factor=0.5, patience=1,
           min_lr=0.00125),
        pl("min_delta_relative_to_best", "val_loss", NOISY, 0.01, factor=0.5, patience=2,
           min_delta=0.01),
        pl("accuracy_auto", "val_accuracy", RISING_ACCURACY, 0.01, factor=0.2, patience=1),
        pl("accuracy_mode_min", "accuracy", RISING_ACCURACY, 0.01, factor=0.2, patience=1,
           mode="min"),
        pl("factor_0_1_many_times", "loss", [1.0] * 16, 0.1, factor=0.1, patience=0),
    ]


def main():
    result = {
        "generated_by": "tests/reference/keras_callbacks.py",
        "versions": {
            "python": sys.version.split()[0],
            "keras": keras.__version__,
            "jax": jax.__version__,
            "numpy": np.__version__,
            "backend": keras.backend.backend(),
        },
        "early_stopping": early_stopping_cases(),
        "reduce_lr_on_plateau": plateau_cases(),
    }
    with open(OUT, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()

"""The authors' Telemanom network in Keras, timed epoch by epoch for benchmarks/telemanom_speed.py.

Run by a Python that has TensorFlow/Keras (never a dependency of this project), e.g.

    /path/to/tf-venv/bin/python benchmarks/_telemanom_keras_worker.py --data DIR --channel A-1 --epochs 4

It needs only numpy and keras, not this project. Built as the authors built it: LSTM(80, return
sequences) -> Dropout(0.3) -> LSTM(80) -> Dropout(0.3) -> Dense(n_predictions) -> linear; MSE, Adam;
training windows shuffled, then ``fit`` with batch 64 and ``validation_split`` 0.2. The driver steps
it one epoch at a time over stdin/stdout (one JSON object per line), like the torch workers:
after each epoch it prints ``{"epoch", "seconds"}`` and waits for a line ("go" runs the next epoch);
after the last epoch, "predict" times the bare forward passes over the test windows and prints the
result with the peak resident memory, then the worker exits.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np


def say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def wait_for(expected: str) -> None:
    line = sys.stdin.readline().strip()
    if line != expected:
        raise SystemExit(f"keras worker: expected '{expected}' from the driver, got '{line}'")


def windows(values: np.ndarray, need: int) -> np.ndarray:
    return np.stack([values[i : i + need] for i in range(len(values) - need + 1)]).astype(np.float32)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--channel", default="A-1")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--l-s", type=int, default=250)
    parser.add_argument("--n-predictions", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # after the log level: TensorFlow reads it on import

    keras.utils.set_random_seed(0)
    l_s, n_pred = args.l_s, args.n_predictions
    data = windows(np.load(args.data / "train" / f"{args.channel}.npy"), l_s + n_pred)
    np.random.shuffle(data)  # the authors shuffle their windows before fit's validation_split
    x_train, y_train = data[:, :-n_pred, :], data[:, -n_pred:, 0]
    test = windows(np.load(args.data / "test" / f"{args.channel}.npy"), l_s)

    model = keras.Sequential(
        [
            keras.Input((l_s, x_train.shape[2])),
            keras.layers.LSTM(80, return_sequences=True),
            keras.layers.Dropout(0.3),
            keras.layers.LSTM(80, return_sequences=False),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(n_pred),
            keras.layers.Activation("linear"),
        ]
    )
    model.compile(loss="mse", optimizer="adam")

    class Stepper(keras.callbacks.Callback):
        """Reports each epoch's seconds (from the go signal to the epoch's end, validation included)
        and holds the next epoch until the driver says go."""

        def __init__(self) -> None:
            super().__init__()
            self.resumed = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            wall, cpu = self.resumed
            say(
                {
                    "epoch": epoch + 1,
                    "seconds": time.perf_counter() - wall,
                    "cpu_seconds": time.process_time() - cpu,
                }
            )
            if epoch + 1 < args.epochs:
                wait_for("go")
                self.resumed = time.perf_counter(), time.process_time()

    say({"ready": True, "stack": f"keras {keras.__version__} ({keras.backend.backend()})"})
    wait_for("go")
    stepper = Stepper()
    model.fit(
        x_train,
        y_train,
        batch_size=64,
        epochs=args.epochs,
        validation_split=0.2,
        callbacks=[stepper],
        verbose=0,
    )
    wait_for("predict")
    model.predict_on_batch(test[:8])  # first call traces; not counted
    began = time.perf_counter()
    for first in range(0, len(test), 1024):
        model.predict_on_batch(test[first : first + 1024])
    seconds = time.perf_counter() - began
    say(
        {
            "predict_seconds_per_1000": seconds * 1000 / len(test),
            "test_windows": len(test),
            "train_windows": int(len(x_train) * (1 - 0.2)),  # Keras splits at int(n * (1 - share))
            "peak_rss_mib": peak_rss_mib(),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The authors' Telemanom network in Keras, for ``telemanom_fidelity.py``; run by a separate interpreter.

    KERAS_BACKEND=torch /path/to/keras-venv/bin/python benchmarks/_keras_telemanom.py

Never imported by the project (Keras and its backends are no dependency of it). It reads one job per
line on stdin, a JSON object ``{"task": npz, "out": npz, "seed": int}``, and answers one JSON line per
job on stdout. The task file holds the windows both stacks train on (``telemanom_fidelity.py`` writes
it): the scaled training and test series, the training and validation window starts and the settings.

The network, loss, optimiser and callbacks are the authors' ``modeling.py`` as written: LSTM(80,
return_sequences) -> Dropout(0.3) -> LSTM(80) -> Dropout(0.3) -> Dense(n_predictions) -> linear, MSE,
``optimizer='adam'`` (Keras defaults), ``fit(batch_size=64, epochs=35, shuffle=True)`` with
``EarlyStopping(monitor='val_loss', patience=10, min_delta=3e-4)``. One change: the held-out windows are
given as ``validation_data`` (the same windows our model holds out) instead of ``validation_split``
taking the last 20 % of the authors' shuffled windows, which is the same kind of random share.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

PREDICT_CHUNK = 2048


def windows(values: np.ndarray, starts: np.ndarray, l_s: int, n_pred: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (rows start .. start+l_s-1, every column) and targets (the next n_pred values of column 0)."""
    steps = np.arange(l_s)
    x = values[starts[:, None] + steps[None, :]]
    y = values[starts[:, None] + l_s + np.arange(n_pred)[None, :], 0]
    return x, y


def build(n_features: int, settings: dict) -> keras.Model:
    model = keras.Sequential()
    model.add(keras.Input(shape=(None, n_features)))
    model.add(keras.layers.LSTM(settings["units"][0], return_sequences=True))
    model.add(keras.layers.Dropout(settings["dropout"]))
    model.add(keras.layers.LSTM(settings["units"][1], return_sequences=False))
    model.add(keras.layers.Dropout(settings["dropout"]))
    model.add(keras.layers.Dense(settings["n_predictions"]))
    model.add(keras.layers.Activation("linear"))
    model.compile(loss="mse", optimizer="adam")
    return model


def run(job: dict) -> dict:
    task = np.load(job["task"], allow_pickle=False)
    settings = json.loads(str(task["settings"]))
    l_s, n_pred = settings["l_s"], settings["n_predictions"]
    keras.utils.set_random_seed(int(job["seed"]))
    train = task["train"].astype(np.float32)
    x_train, y_train = windows(train, task["train_idx"], l_s, n_pred)
    x_val, y_val = windows(train, task["val_idx"], l_s, n_pred)
    model = build(train.shape[1], settings)
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=settings["patience"], min_delta=settings["min_delta"], verbose=0
    )
    began = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=settings["batch_size"],
        epochs=settings["epochs"],
        validation_data=(x_val, y_val),
        callbacks=[stop],
        shuffle=True,
        verbose=0,
    )
    train_seconds = time.perf_counter() - began
    del x_train, y_train, x_val, y_val
    test = task["test"].astype(np.float32)
    starts = np.arange(len(test) - l_s, dtype=np.int64)
    predicted = np.empty(len(starts), dtype=np.float64)
    for first in range(0, len(starts), PREDICT_CHUNK):
        chunk = starts[first : first + PREDICT_CHUNK]
        x = test[chunk[:, None] + np.arange(l_s)[None, :]]
        predicted[first : first + len(chunk)] = model.predict(x, batch_size=PREDICT_CHUNK, verbose=0)[:, 0]
    sat_starts, h1_abs_mean, h1_saturated = first_layer_saturation(model, test, starts, l_s)
    out = job["out"]
    tmp = out + ".tmp.npz"
    np.savez(
        tmp,
        predicted=predicted.astype(np.float32),  # keeps the returned files small
        train_loss=np.asarray(history.history["loss"], dtype=np.float64),
        val_loss=np.asarray(history.history["val_loss"], dtype=np.float64),
        train_seconds=train_seconds,
        stack=f"keras {keras.__version__} ({keras.backend.backend()})",
        sat_starts=sat_starts,
        h1_abs_mean=h1_abs_mean,
        h1_saturated=h1_saturated,
    )
    os.replace(tmp, out)
    return {"ok": True, "epochs": len(history.history["loss"]), "seconds": train_seconds}


SATURATION_STRIDE = 25  # every 25th test window is probed
SATURATED = 0.95


def first_layer_saturation(model, test: np.ndarray, starts: np.ndarray, l_s: int):
    """The first LSTM's last-step output on every 25th test window: mean |h| and the share of units
    with |h| > 0.95 (the same probe as ours in ``telemanom_fidelity.py``)."""
    probe = starts[::SATURATION_STRIDE]
    x = test[probe[:, None] + np.arange(l_s)[None, :]]
    h = keras.ops.convert_to_numpy(model.layers[0](x, training=False))[:, -1, :]
    return probe, np.abs(h).mean(axis=1), (np.abs(h) > SATURATED).mean(axis=1)


FALLBACK_CALLS = [0]


def count_torch_fallback() -> str:
    """On the torch backend, count calls of Keras' per-step Python LSTM loop (used when cuDNN is not)."""
    if keras.backend.backend() != "torch":
        return "n/a"
    import importlib

    try:  # a private module of Keras: if it moved, run without the count
        rnn = importlib.import_module("keras.src.backend.torch.rnn")
        plain = rnn._fallback_lstm
    except (ImportError, AttributeError):
        return "unknown"

    def counted(*args, **kwargs):
        FALLBACK_CALLS[0] += 1
        return plain(*args, **kwargs)

    rnn._fallback_lstm = counted
    return str(rnn._is_cuda_cudnn_available())


def main() -> int:
    cudnn = count_torch_fallback()
    ready = {"ready": True, "keras": keras.__version__, "backend": keras.backend.backend(), "cudnn": cudnn}
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            answer = run(job)
        except Exception as exc:  # report and carry on with the next job
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        keras.backend.clear_session()
        answer["fallback_lstm_calls"], FALLBACK_CALLS[0] = FALLBACK_CALLS[0], 0
        print(json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

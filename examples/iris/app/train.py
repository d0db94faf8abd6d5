"""Train the iris classifier for one image tag and write an MLServer model folder.

Runs at image build time, inside the image, so the pickle is read back by the very
scikit-learn that wrote it. Training is deterministic (fixed random_state, bundled data),
so the same tag always gets the same model.

Each tag is a real release: the good ones differ in hyper-parameters, and each bad one
carries its fault in what this script writes (a mis-trained model, a runtime with an
injected delay, a wrong setting) rather than in a switch the deployment sets.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

SKLEARN_RUNTIME = "mlserver_sklearn.SKLearnModel"
# The `slower` tag's extra time per request (seconds); measured, see docs/canary.md.
SLOWER_DELAY_S = 0.0012
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Variant:
    """What one image tag serves."""

    version: str
    C: float
    # Rotates the training labels: the model learns setosa as versicolor, and so on.
    permute_labels: bool = False
    implementation: str = SKLEARN_RUNTIME
    extra: dict[str, Any] = field(default_factory=dict)
    # Written as settings.json next to the model when set. Good releases have none, so the
    # server is configured by MLSERVER_* variables (a settings.json would take precedence).
    server_settings: dict[str, Any] | None = None


VARIANTS: dict[str, Variant] = {
    "v1": Variant(version="v1", C=1.0),
    # A second good release: weaker regularisation, so different scores, same classes.
    "v2": Variant(version="v2", C=10.0),
    # Healthy and ready, but trained on rotated labels: every prediction is wrong.
    "wrong": Variant(version="wrong", C=1.0, permute_labels=True),
    # Correct, but the runtime sleeps on every request (see iris_runtimes.SlowSKLearnModel).
    "slow": Variant(
        version="slow",
        C=1.0,
        implementation="iris_runtimes.SlowSKLearnModel",
        extra={"delay_seconds": 1.5},
    ),
    # A retrained candidate for the canary: stronger regularisation (C=0.3). Same classes on
    # the golden cases, but it disagrees with v1 on 4 of the 150 iris rows (83, 106, 119, 134)
    # and its accuracy is 96.0 % against v1's 97.3 %: a small change the canary must notice.
    "retrained": Variant(version="retrained", C=0.3),
    # Correct, and a little slower than v1: a fixed sleep per request, 1.2 ms, sized so that
    # the canary's end-to-end median through its port-forward (6-9 ms for v1 on an idle
    # 2-core machine) is about 25 % above v1's; docs/canary.md has the measurements and what
    # load on the machine does to the ratio. Far from `slow`'s 1.5 s: a regression a latency
    # budget would not catch, a side-by-side comparison does.
    "slower": Variant(
        version="slower",
        C=1.0,
        implementation="iris_runtimes.SlowSKLearnModel",
        extra={"delay_seconds": SLOWER_DELAY_S},
    ),
    # Correct, and ~10 % more costly than v1 on the node of 2026-12-04 (MLServer's own time
    # ~1.4 ms an inference, ~1 ms of it CPU): 0.14 ms of extra CPU work per inference, which
    # waits for the CPU as the rest does, so a busy node leaves the share about the same. The
    # canary's latency threshold (latency_ratio 1.1): what its power target is about.
    # docs/canary.md has the ratio it measured; on another node the share differs.
    "heavier": Variant(
        version="heavier",
        C=1.0,
        implementation="iris_runtimes.HeavierSKLearnModel",
        extra={"cpu_seconds": 0.00014},
    ),
    # Ready, and an inference never comes back (a day's sleep per request, in the event loop:
    # health answers): what a deadlocked model looks like from outside.
    "hang": Variant(
        version="hang",
        C=1.0,
        implementation="iris_runtimes.SlowSKLearnModel",
        extra={"delay_seconds": 86400},
    ),
    # The runtime's load-time self-check expects 4 classes; iris has 3, so load() returns
    # False: the server is live, the model is registered but never ready.
    "unready": Variant(
        version="unready",
        C=1.0,
        implementation="iris_runtimes.CheckedSKLearnModel",
        extra={"expected_classes": 4},
    ),
    # A settings template that was never rendered: MLServer rejects the port at start and
    # exits 1. (A broken model file would not do: MLServer logs it and exits 0.)
    "crash": Variant(version="crash", C=1.0, server_settings={"http_port": "${HTTP_PORT}"}),
}


def train(variant: Variant) -> Pipeline:
    data = load_iris()
    X, y = data.data, data.target
    if variant.permute_labels:
        y = (y + 1) % 3
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=variant.C, max_iter=1000, random_state=0)
    )
    model.fit(X, y)
    return model


def model_settings(variant: Variant) -> dict[str, Any]:
    # Declared tensors are what GET /v2/models/iris reports; the sklearn runtime itself
    # answers any input name and the outputs "predict" and "predict_proba".
    return {
        "name": "iris",
        "implementation": variant.implementation,
        "platform": "sklearn",
        "versions": [variant.version],
        "inputs": [{"name": "predict", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [
            {"name": "predict", "datatype": "INT64", "shape": [-1, 1]},
            {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]},
        ],
        "parameters": {
            "uri": "./model.joblib",
            "version": variant.version,
            "extra": variant.extra,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("out", type=Path, help="model folder to write (created)")
    args = parser.parse_args()
    variant = VARIANTS[args.variant]

    model = train(variant)
    data = load_iris()
    accuracy = float(np.mean(model.predict(data.data) == data.target))

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    (out / "model-settings.json").write_text(json.dumps(model_settings(variant), indent=2) + "\n")
    if variant.server_settings is not None:
        (out / "settings.json").write_text(json.dumps(variant.server_settings) + "\n")
    if not variant.implementation.startswith("mlserver_sklearn."):
        # MLServer puts the model folder on sys.path, so a runtime module placed here imports.
        shutil.copy(HERE / "iris_runtimes.py", out / "iris_runtimes.py")
    print(f"trained {args.variant} (version {variant.version}): accuracy on iris {accuracy:.3f}")


if __name__ == "__main__":
    main()

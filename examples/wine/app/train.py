"""Train the wine classifier for one image tag and write its model folder.

Runs at image build time, inside the image, so the pickle is read back by the very
scikit-learn that wrote it. The data is the wine recognition set that scikit-learn ships
(178 wines, 13 chemical measurements, 3 cultivars): nothing is downloaded. Training is
deterministic (fixed random_state, bundled data), so a tag always gets the same model.

Each bad tag carries its fault in what this script writes, not in a switch the deployment
sets: a model trained on rotated labels (wrong), a model file cut short (crash), a self-check
that cannot pass (unready).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import joblib
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class Variant:
    """What one image tag serves."""

    version: str
    C: float
    # Rotates the training labels: cultivar 0 is learnt as 1, and so on.
    rotate_labels: bool = False
    # Keep only the first bytes of the model file: the server cannot load it and exits 1.
    truncate_model: bool = False
    # The feature count the server's start-up self-check expects (wine has 13).
    expected_features: int = 13
    # A prediction request is read and never answered (health and metrics still answer).
    hang: bool = False


VARIANTS: dict[str, Variant] = {
    "v1": Variant(version="v1", C=1.0),
    # A second good release: weaker regularisation, other scores, the same classes.
    "v2": Variant(version="v2", C=10.0),
    # Healthy and ready, every prediction wrong.
    "wrong": Variant(version="wrong", C=1.0, rotate_labels=True),
    # A model file truncated in transit: the server exits 1 at start, a crash loop.
    "crash": Variant(version="crash", C=1.0, truncate_model=True),
    # Live, never ready: the self-check expects 14 features, the model takes 13.
    "unready": Variant(version="unready", C=1.0, expected_features=14),
    # Ready, and a prediction never comes back: what a deadlocked model looks like from outside.
    "hang": Variant(version="hang", C=1.0, hang=True),
}


def train(variant: Variant) -> tuple[Pipeline, float]:
    data = load_wine()
    X, y = data.data, data.target
    if variant.rotate_labels:
        y = (y + 1) % 3
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=variant.C, max_iter=2000, random_state=0)
    )
    model.fit(X, y)
    return model, float(model.score(data.data, data.target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("out", type=Path, help="model folder to write")
    args = parser.parse_args()
    variant = VARIANTS[args.variant]
    model, accuracy = train(variant)
    args.out.mkdir(parents=True, exist_ok=True)
    model_file = args.out / "model.joblib"
    joblib.dump(model, model_file)
    if variant.truncate_model:
        model_file.write_bytes(model_file.read_bytes()[:64])
    metadata = {
        "name": "wine",
        "version": variant.version,
        "classes": ["class_0", "class_1", "class_2"],
        "features": 13,
        "expected_features": variant.expected_features,
        "hang": variant.hang,
    }
    (args.out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    print(f"trained {variant.version}: accuracy on the wine data {accuracy:.3f}")


if __name__ == "__main__":
    main()

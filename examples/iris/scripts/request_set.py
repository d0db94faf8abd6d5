"""Write the iris request set for the canary (fixtures/requests/iris.jsonl): one labelled V2
request per row of the iris data set, asking for both outputs (label and scores).

    python examples/iris/scripts/request_set.py > fixtures/requests/iris.jsonl   # with sklearn
    python examples/iris/scripts/request_set.py --csv iris.csv > ...   # sklearn's bundled CSV

Deterministic: same data, same order, same file.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path


def rows(csv_path: Path | None) -> list[tuple[list[float], int]]:
    if csv_path is None:
        from sklearn.datasets import load_iris

        data = load_iris()
        return [
            ([float(x) for x in r], int(t)) for r, t in zip(data.data, data.target, strict=True)
        ]
    with csv_path.open() as f:
        reader = csv.reader(f)
        next(reader)  # header: count, features, class names
        return [([float(x) for x in r[:4]], int(r[4])) for r in reader]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, help="scikit-learn's bundled iris.csv")
    args = parser.parse_args()
    for k, (features, label) in enumerate(rows(args.csv)):
        line = {
            "name": f"iris-{k:03d}",
            "request": {
                "inputs": [
                    {"name": "predict", "shape": [1, 4], "datatype": "FP64", "data": features}
                ],
                "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
            },
            "label": label,
        }
        sys.stdout.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()

"""Write the wine request set for the canary (fixtures/wine/requests/wine.jsonl): one labelled
plain-protocol request (``POST /predict``) per row of the wine data set.

    python examples/wine/scripts/request_set.py > fixtures/wine/requests/wine.jsonl  # with sklearn
    docker run --rm -i --network=none --entrypoint python rolloutgate/wine:v1 - \\
        < examples/wine/scripts/request_set.py > fixtures/wine/requests/wine.jsonl  # the image's

Deterministic: same data, same order, same file.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    from sklearn.datasets import load_wine

    data = load_wine()
    for k, (row, label) in enumerate(zip(data.data, data.target, strict=True)):
        line = {
            "name": f"wine-{k:03d}",
            "request": {"body": {"instances": [[float(x) for x in row]]}},
            "label": int(label),
        }
        sys.stdout.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()

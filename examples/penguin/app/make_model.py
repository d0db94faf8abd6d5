"""Write the penguin model for one image tag: a JSON file the server reads at start.

Runs at image build time. The model is small enough to set by hand: a Gaussian classifier with
one centre per species and a shared spread per feature (naive Bayes with equal priors), its
numbers rounded from the species means and within-species standard deviations of the Palmer
Archipelago penguin measurements (bill length and depth, flipper length, body mass). Nothing is
trained or downloaded.

Each tag is a real release: the good ones differ in their spreads, and each bad one carries its
fault in what this script writes (rotated labels, an injected delay, a file the server cannot
read), never in a switch the deployment sets.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

SPECIES = ["Adelie", "Chinstrap", "Gentoo"]
FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CENTRES = [
    [38.8, 18.3, 190.0, 3700.0],  # Adelie
    [48.8, 18.4, 195.8, 3733.0],  # Chinstrap
    [47.5, 15.0, 217.2, 5076.0],  # Gentoo
]
SPREAD_V1 = [3.0, 1.1, 6.7, 450.0]
# v2: wider spreads, as a model fitted with more smoothing would have: other scores, the same
# species for every golden row.
SPREAD_V2 = [3.6, 1.3, 8.0, 540.0]


def model(version: str, **changes: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "name": "penguin",
        "version": version,
        "species": SPECIES,
        "features": FEATURES,
        "centres": CENTRES,
        "spread": SPREAD_V1,
        # The server's start-up self-check: the model must take this many features.
        "expected_features": len(FEATURES),
        # Seconds every score request waits before it is answered; None: never answered.
        "delay_s": 0.0,
    }
    m.update(changes)
    return m


VARIANTS: dict[str, dict[str, Any]] = {
    "v1": model("v1"),
    "v2": model("v2", spread=SPREAD_V2),
    # Ready, quick, and every answer wrong: the labels are rotated (Adelie answered as
    # Chinstrap, and so on).
    "wrong": model("wrong", species=SPECIES[1:] + SPECIES[:1]),
    # Correct, 0.4 s per score request: over the golden file's latency budget (p50 250 ms) by
    # construction, yet short enough that the gate's 20 timed requests take seconds.
    "slow": model("slow", delay_s=0.4),
    # Live, never ready: the self-check expects a fifth feature the model does not take.
    "unready": model("unready", expected_features=5),
    # Live and ready, but a score request is read and never answered (the connection stays
    # open): what a deadlocked model looks like from outside.
    "hang": model("hang", delay_s=None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=[*sorted(VARIANTS), "crash"])
    parser.add_argument("out", type=Path, help="model folder to write (created)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "model.json"
    if args.variant == "crash":
        # Cut short, as an interrupted upload leaves it: the server cannot parse it and exits 1.
        path.write_text(json.dumps(VARIANTS["v1"])[:64])
    else:
        path.write_text(json.dumps(VARIANTS[args.variant], indent=2) + "\n")
    print(f"wrote {args.variant} model to {path}")


if __name__ == "__main__":
    main()

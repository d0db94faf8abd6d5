"""The canary's prediction metrics: golden cases, label agreement, accuracy, numeric differences.

Answers are read as the gate reads them (``checks.cases``): the golden cases' expectations say
which values of an answer matter (a JMESPath expression, or a V2 output by name), and those
values, flattened row-major, are what the arms are compared on, for the golden cases and the
request set alike. A value is a **number** when the golden file gives it a tolerance or an
answer holds a non-integer number in it (a JSON float: scores, probabilities); otherwise
(integers, booleans, strings) it is a **label**, and a differing element is a flip. Pure.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rolloutgate.canary.metrics import Metric
from rolloutgate.canary.observations import Item, Observations, Sample, first_answers
from rolloutgate.canary.stats import McNemar, mcnemar
from rolloutgate.canary.thresholds import Thresholds
from rolloutgate.checks.cases import Case, Expectation, close, compare, flatten
from rolloutgate.checks.latency import percentile


@dataclass(frozen=True)
class Picked:
    """One value of one item as both arms answered it, flattened row-major."""

    item: str
    value: str
    baseline: tuple[Any, ...]
    canary: tuple[Any, ...]


def values_of(items: Mapping[str, Item]) -> dict[str, Expectation]:
    """The values the arms are compared on, by name: each value the golden cases'
    expectations pick, once, in the golden file's order; named by the V2 output the
    expectation names, else by its JMESPath expression."""
    found: dict[str, Expectation] = {}
    for item in items.values():
        for exp in item.case.expect if item.case is not None else ():
            found.setdefault(exp.output or exp.path, exp)
    return found


def values(obs: Observations) -> dict[str, Expectation]:
    """``values_of`` the run's items."""
    return values_of(obs.items)


def picked(obs: Observations) -> list[Picked]:
    """Every value both arms' answers to an item hold (an item's first answer on each arm)."""
    base, can = first_answers(obs, "baseline"), first_answers(obs, "canary")
    chosen = values(obs)
    found: list[Picked] = []
    for item_id in obs.items:
        if item_id not in base or item_id not in can:
            continue
        for name, exp in chosen.items():
            b, c = exp.search(base[item_id]), exp.search(can[item_id])
            if b is not None and c is not None:
                found.append(Picked(item_id, name, tuple(flatten(b)), tuple(flatten(c))))
    return found


def numbers(obs: Observations, picks: list[Picked]) -> set[str]:
    """Names of the values judged as numbers (see the module's docstring); the rest are labels."""
    found = {n for n, e in values(obs).items() if e.abs_tol is not None or e.rel_tol is not None}
    found.update(
        p.value for p in picks if any(isinstance(x, float) for x in (*p.baseline, *p.canary))
    )
    return found


def judge_golden(obs: Observations) -> Metric:
    """Every golden case must answer on the canary as it expects (status, values). Critical."""
    golden = {i.id: i.case for i in obs.items.values() if i.case is not None}
    if not golden:
        return Metric("golden", "nodata", "no golden cases", critical=True)
    problems: list[tuple[str, str]] = []  # (item, what was wrong)
    checked = 0
    for s in obs.samples:
        # A transport error (no HTTP answer: the port-forward dropped the connection) says
        # nothing about the model; a golden case never answered makes the run inconclusive.
        if s.arm != "canary" or s.item not in golden or s.outcome == "transport":
            continue
        checked += 1
        if not s.ok:
            problems.append((s.item, _unexpected(s, golden[s.item])))
    answers = first_answers(obs, "canary")
    for item_id, case in golden.items():
        if item_id in answers:
            found = [p for exp in case.expect for p in compare(exp, answers[item_id])]
            problems += [(item_id, p) for p in found]
    unanswered = [i for i in golden if i not in answers]
    failing = sorted({i for i, _ in problems})
    figures = {"cases": len(golden), "requests": checked, "failing": failing}
    if problems:
        distinct = list(dict.fromkeys(f"{i}: {p}" for i, p in problems))
        shown = "; ".join(distinct[:5])
        more = f" (+{len(distinct) - 5} more)" if len(distinct) > 5 else ""
        return Metric(
            "golden",
            "fail",
            f"{len(failing)} of {len(golden)} golden cases fail on the canary: {shown}{more}",
            critical=True,
            figures=figures,
        )
    if unanswered:
        return Metric(
            "golden",
            "nodata",
            f"golden cases not answered: {', '.join(unanswered)}",
            critical=True,
            figures=figures,
        )
    return Metric(
        "golden",
        "pass",
        f"all {len(golden)} golden cases answer as expected on the canary",
        critical=True,
        figures=figures,
    )


def _unexpected(s: Sample, case: Case) -> str:
    """What a golden case's answer was instead of the status it expects."""
    what = f"HTTP {s.status}" if s.status is not None else s.outcome
    if s.status is not None and case.status != 200:
        what += f" (expected {case.status})"
    return f"{what} {s.error}".rstrip()


def label_output(obs: Observations, picks: list[Picked]) -> str | None:
    """The value judged as the label: ``canary.label_output`` when set (by name or path), else
    the first value both arms answered that is not a number. None when there is none."""
    chosen = values(obs)
    if obs.label_output:
        return next((n for n, e in chosen.items() if obs.label_output in (n, e.path)), None)
    answered, numeric = {p.value for p in picks}, numbers(obs, picks)
    return next((n for n in chosen if n in answered and n not in numeric), None)


def probability_rows(
    picks: list[Picked], numeric: set[str], label: str | None
) -> tuple[str | None, dict[str, tuple[list[list[float]], list[list[float]]]]]:
    """The numeric value that holds class probabilities, and per item its rows on each arm
    (baseline, canary): a value whose answers split into one row per label element, each in
    [0, 1] and summing to 1. (None, {}) when no value does (a regression, scores only)."""
    labels = {p.item: len(p.baseline) for p in picks if p.value == label}
    for name in sorted({p.value for p in picks if p.value in numeric}):
        rows: dict[str, tuple[list[list[float]], list[list[float]]]] = {}
        for p in (p for p in picks if p.value == name):
            width = len(p.baseline) // max(1, labels.get(p.item, 1))
            if width < 2 or len(p.baseline) != len(p.canary) or len(p.baseline) % width:
                break
            arms = tuple(
                [[float(x) for x in flat[k : k + width]] for k in range(0, len(flat), width)]
                for flat in (p.baseline, p.canary)
            )
            if not all(_distribution(r) for arm in arms for r in arm):
                break
            rows[p.item] = (arms[0], arms[1])
        else:
            if rows:
                return name, rows
    return None, {}


def _distribution(row: list[float]) -> bool:
    return all(0.0 <= x <= 1.0 for x in row) and abs(sum(row) - 1.0) <= 1e-3


def _margin(row: list[float]) -> float:
    """The baseline's confidence in its answer: its top probability minus the second."""
    top = sorted(row, reverse=True)
    return top[0] - top[1]


def judge_agreement(obs: Observations, t: Thresholds) -> Metric:
    """Label flips between arms on identical inputs (values that are labels), judged against
    the A/A noise floor; a flip where the baseline itself was unsure (its top two probabilities
    within ``flip_margin``) is borderline: named, not counted. Also the distance between the
    arms' predicted probabilities (total variation, reported)."""
    from scipy.stats import binomtest  # type: ignore[import-untyped]

    picks = picked(obs)
    numeric = numbers(obs, picks)
    label = label_output(obs, picks)
    proba_name, proba = probability_rows(picks, numeric, label)
    compared = 0
    flips: list[tuple[str, str, int, Any, Any]] = []
    borderline: list[tuple[str, str, int, Any, Any, float]] = []
    matrix: Counter[tuple[str, str]] = Counter()
    for p in picks:
        if p.value in numeric:
            continue
        for k, (bv, cv) in enumerate(zip(p.baseline, p.canary, strict=False)):
            compared += 1
            matrix[(str(bv), str(cv))] += 1
            if bv == cv:
                continue
            rows = proba.get(p.item) if p.value == label else None
            margin = _margin(rows[0][k]) if rows and k < len(rows[0]) else None
            if margin is not None and margin < t.flip_margin:
                borderline.append((p.item, p.value, k, bv, cv, margin))
            else:
                flips.append((p.item, p.value, k, bv, cv))
    critical = obs.same_model
    if compared == 0:
        return Metric("agreement", "nodata", "no label output answered by both arms", critical)
    rate = len(flips) / compared
    figures: dict[str, Any] = {
        "compared": compared,
        "flips": len(flips) + len(borderline),
        "confident_flips": len(flips),
        "borderline_flips": len(borderline),
        "flip_rate": round((len(flips) + len(borderline)) / compared, 6),
        "confident_flip_rate": round(rate, 6),
        "flip_margin": t.flip_margin,
        "noise_floor": t.flip_noise_floor,
        "matrix": [[b, c, n] for (b, c), n in sorted(matrix.items())],
        "flipped": [
            {"item": i, "output": o, "index": k, "baseline": bv, "canary": cv}
            for i, o, k, bv, cv in flips[:100]
        ],
        "borderline": [
            {"item": i, "output": o, "index": k, "baseline": bv, "canary": cv, "margin": m}
            for i, o, k, bv, cv, m in borderline[:100]
        ],
    }
    distance = _distance(proba)
    if distance:
        figures["probability_distance"] = {"output": proba_name, **distance}
    if obs.same_model:
        # Same image on both arms: flips only as often as A/A runs show (binomial, one-sided).
        p_value = float(binomtest(len(flips), compared, t.flip_noise_floor, "greater").pvalue)
        figures["p_value"] = p_value
        failing = len(flips) > 0 and p_value < t.alpha
        rule = f"same model: flips at the A/A noise floor {t.flip_noise_floor:.2%} only"
    else:
        limit = t.max_flip_rate + t.flip_noise_floor
        failing = rate > limit
        rule = f"at most {limit:.1%}"
    figures["max_flip_rate"] = 0.0 if obs.same_model else t.max_flip_rate
    more_text = ""
    if borderline:
        shown = ", ".join(
            f"{i} ({bv}->{cv}, margin {m:.2f})" for i, _, _, bv, cv, m in borderline[:8]
        )
        more_text += (
            f"; {len(borderline)} borderline (baseline margin < {t.flip_margin:g}): {shown}"
        )
    if distance:
        more_text += (
            f"; probabilities ({proba_name}) differ by {distance['mean_tv']:.3f} on average "
            f"(total variation, max {distance['max_tv']:.3f})"
        )
    if failing:
        # Each flipped request once, with its first flip; the request set's rows first (the
        # golden metric names the golden cases already).
        first: dict[str, str] = {}
        for i, o, k, bv, cv in flips:
            first.setdefault(i, f"{i} ({o}[{k}] {bv}->{cv})")
        names = sorted(first, key=lambda i: obs.items[i].case is not None)
        shown = ", ".join(first[i] for i in names[:8])
        more = f" (+{len(names) - 8} more)" if len(names) > 8 else ""
        return Metric(
            "agreement",
            "fail",
            f"{len(flips)} of {compared} labels flipped ({rate:.1%}; {rule}) in "
            f"{len(names)} requests: {shown}{more}{more_text}",
            critical,
            figures,
        )
    flipped = ", ".join(f"{i} ({bv}->{cv})" for i, _, _, bv, cv in flips[:8])
    return Metric(
        "agreement",
        "pass",
        f"{compared - len(flips) - len(borderline)} of {compared} labels agree "
        f"({len(flips)} flipped{': ' + flipped if flipped else ''}, {rate:.1%}; {rule})"
        f"{more_text}",
        critical,
        figures,
    )


def accuracy_decision(test: McNemar, t: Thresholds) -> str:
    """``critical`` (significantly less accurate, by more than max_accuracy_drop), ``fail``
    (the drop's upper bound is above max_accuracy_drop) or ``pass``. (The simulation in
    bench/canary.py calls this very rule.)"""
    # A tiny epsilon keeps "exactly at the limit" within it despite float rounding.
    limit = t.max_accuracy_drop + 1e-12
    if test.p_worse < t.alpha and test.drop > limit:
        return "critical"
    return "fail" if test.drop_high > limit else "pass"


def _distance(
    proba: dict[str, tuple[list[list[float]], list[list[float]]]],
) -> dict[str, float]:
    """Total variation distance between the arms' probability rows: mean, p95, max."""
    tv = sorted(
        0.5 * sum(abs(x - y) for x, y in zip(b, c, strict=True))
        for base, can in proba.values()
        for b, c in zip(base, can, strict=True)
    )
    if not tv:
        return {}
    return {
        "rows": len(tv),
        "mean_tv": round(statistics.fmean(tv), 6),
        "p95_tv": round(percentile(tv, 95), 6),
        "max_tv": round(tv[-1], 6),
    }


@dataclass(frozen=True)
class Row:
    """One labelled row both arms answered: whether each arm's value is right. A label is
    right when equal (of the same type: ``true`` is not ``1``); a number when within the golden
    value's tolerances (``abs_tol``, ``rel_tol``: a regression's outputs), exactly without."""

    item: str
    index: int
    label: Any
    baseline: Any
    canary: Any
    baseline_right: bool
    canary_right: bool


def label_value(obs: Observations) -> tuple[str | None, str]:
    """The value judged against the request set's labels, and why not when None:
    ``label_output`` (the label when set, else the first value that is a label), else — a
    regression — the first number both arms answered."""
    picks = picked(obs)
    output = label_output(obs, picks)
    if obs.label_output:
        chosen = values(obs)
        return output, (
            f"label_output {obs.label_output!r} is none of the values the golden cases pick "
            f"({', '.join(chosen) or 'none'})"
        )
    if output is None:
        answered = {p.value for p in picks}
        output = next((n for n in values(obs) if n in answered), None)
    return output, "no value the golden cases pick was answered by both arms"


def labelled_rows(obs: Observations, output: str) -> list[Row]:
    """Every labelled row of the request set both arms answered, judged on ``output``."""
    exp = values(obs)[output]
    by_item = {p.item: p for p in picked(obs) if p.value == output}
    rows: list[Row] = []
    for item in obs.items.values():
        p = by_item.get(item.id)
        if p is None or item.labels is None:
            continue
        for k, label in enumerate(item.labels):
            if k < len(p.baseline) and k < len(p.canary):
                b, c = p.baseline[k], p.canary[k]
                rows.append(
                    Row(item.id, k, label, b, c, close(label, b, exp), close(label, c, exp))
                )
    return rows


def judge_accuracy(obs: Observations, t: Thresholds) -> Metric:
    """Accuracy of both arms on the request set's labels (a number right within the golden
    value's tolerance), judged paired (exact McNemar on the rows they disagree on). Critical
    fail: the canary is significantly less accurate and by more than ``max_accuracy_drop``;
    fail: the drop's interval reaches above ``max_accuracy_drop`` (not shown to be within it:
    a person should look); else pass. Only rows both arms answered count."""
    if not any(i.labels is not None for i in obs.items.values()):
        return Metric("accuracy", "nodata", "the request set has no labels")
    output, why = label_value(obs)
    if output is None:
        return Metric("accuracy", "nodata", why)
    rows = labelled_rows(obs, output)
    if not rows:
        return Metric("accuracy", "nodata", f"no labelled request answered by both arms ({output})")
    total = len(rows)
    wrong_canary = [r.item for r in rows if r.baseline_right and not r.canary_right]
    right_canary = [r.item for r in rows if r.canary_right and not r.baseline_right]
    test = mcnemar(total, len(wrong_canary), len(right_canary), confidence=t.confidence)
    acc_b = sum(r.baseline_right for r in rows) / total
    acc_c = sum(r.canary_right for r in rows) / total
    exp = values(obs)[output]
    figures = {
        "output": output,
        "tolerance": exp.tolerance,
        "labelled": total,
        "baseline": round(acc_b, 6),
        "canary": round(acc_c, 6),
        "drop": round(test.drop, 6),
        "drop_low": round(test.drop_low, 6),
        "drop_high": round(test.drop_high, 6),
        "p_value": test.p_worse,
        "newly_wrong": wrong_canary[:50],
        "newly_right": right_canary[:50],
        "max_drop": t.max_accuracy_drop,
    }
    text = (
        f"accuracy on {total} labels ({output}, {exp.tolerance}): canary {acc_c:.1%}, "
        f"baseline {acc_b:.1%} (drop "
        f"{test.drop * 100:+.1f} pt, {t.confidence:.0%} bounds {test.drop_low * 100:+.1f} to "
        f"{test.drop_high * 100:+.1f} pt; {test.worse} newly wrong, {test.better} newly right, "
        f"exact McNemar one-sided p = {test.p_worse:.3g}; at most "
        f"{t.max_accuracy_drop * 100:.1f} pt)"
    )
    more = f"; newly wrong: {', '.join(wrong_canary[:8])}" if wrong_canary else ""
    decision = accuracy_decision(test, t)
    if decision == "critical":
        return Metric("accuracy", "fail", f"canary less accurate: {text}{more}", True, figures)
    if decision == "fail":
        return Metric(
            "accuracy",
            "fail",
            f"not shown to be within {t.max_accuracy_drop * 100:.1f} pt: {text}{more}",
            figures=figures,
        )
    return Metric("accuracy", "pass", text, figures=figures)


def judge_numeric(obs: Observations, t: Thresholds) -> Metric:
    """Differences of numeric values: judged for the same model (critical) or when asked."""
    picks = picked(obs)
    numeric = numbers(obs, picks)
    diffs: list[float] = []
    outside: list[str] = []
    for p in picks:
        if p.value not in numeric:
            continue
        for k, (bv, cv) in enumerate(zip(p.baseline, p.canary, strict=False)):
            if not (_number(bv) and _number(cv)):
                continue
            d = abs(float(cv) - float(bv))
            diffs.append(d)
            if d > t.numeric_abs_tol + t.numeric_rel_tol * abs(float(bv)):
                outside.append(f"{p.item} ({p.value}[{k}] {bv:.6g}->{cv:.6g})")
    judged = obs.same_model or t.judge_numeric
    critical = obs.same_model
    if not diffs:
        return Metric("numeric", "nodata", "no numeric output answered by both arms", critical)
    ordered = sorted(diffs)
    figures = {
        "compared": len(diffs),
        "max_abs_diff": ordered[-1],
        "p95_abs_diff": percentile(ordered, 95),
        "mean_abs_diff": statistics.fmean(ordered),
        "outside_tolerance": len(outside),
        "abs_tol": t.numeric_abs_tol,
        "rel_tol": t.numeric_rel_tol,
        "diffs": ordered if len(ordered) <= 5000 else ordered[:: len(ordered) // 5000 + 1],
    }
    text = (
        f"{len(diffs)} numbers compared: max |d| {ordered[-1]:.3g}, p95 |d| "
        f"{figures['p95_abs_diff']:.3g}; {len(outside)} outside {t.numeric_abs_tol:g} + "
        f"{t.numeric_rel_tol:g}*|baseline|"
    )
    if not judged:
        return Metric(
            "numeric",
            "nodata",
            text + " (reported, not judged: a new model's scores may move)",
            figures=figures,
        )
    if outside:
        shown = ", ".join(outside[:5])
        return Metric("numeric", "fail", f"{text}: {shown}", critical, figures)
    return Metric("numeric", "pass", text, critical, figures)


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)

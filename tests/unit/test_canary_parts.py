"""The canary's pure parts: arm objects, who selects them, the live tag, the request set, the
traffic plan, the settings, and the reports made from a judged run."""

from __future__ import annotations

import fnmatch
import json
import random
from dataclasses import fields
from pathlib import Path

import pytest

from rolloutgate.canary import config as canary_config
from rolloutgate.canary import history as canary_history
from rolloutgate.canary import page as canary_page
from rolloutgate.canary import report as canary_report
from rolloutgate.canary.arms import arm_deployment, live_tag
from rolloutgate.canary.judge import judge
from rolloutgate.canary.observations import Item, Sample
from rolloutgate.canary.run import CanaryRun, error_judgement
from rolloutgate.canary.thresholds import Thresholds
from rolloutgate.canary.traffic import load_request_set, plan
from rolloutgate.checks import cases, protocols
from rolloutgate.checks.httpclient import Request
from rolloutgate.errors import ClusterError, ConfigError
from rolloutgate.kube.portforward import selects as endpoint_selects
from rolloutgate.manifests import load

from .k8s_objects import gate_config

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = load(REPO / "fixtures" / "manifests")
DEPLOYMENT = next(o for o in MANIFESTS if o["kind"] == "Deployment")
SERVICE = next(o for o in MANIFESTS if o["kind"] == "Service")


def test_arm_is_a_copy_with_own_name_labels_replicas_and_tag() -> None:
    arm = arm_deployment(
        DEPLOYMENT, "canary", tag="v2", images=("rolloutgate/iris",), replicas=1, run_id="r1"
    )
    assert arm["metadata"]["name"] == "iris-canary"
    assert arm["spec"]["replicas"] == 1
    assert arm["spec"]["selector"] == {
        "matchLabels": {"rolloutgate.io/canary-of": "iris", "rolloutgate.io/canary-arm": "canary"}
    }
    labels = arm["spec"]["template"]["metadata"]["labels"]
    assert labels["rolloutgate.io/canary-run"] == "r1"
    assert "app.kubernetes.io/name" not in labels
    container = arm["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "rolloutgate/iris:v2"
    # Same pod spec otherwise: resources, probes, security.
    original = DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == original["resources"]
    assert container["readinessProbe"] == original["readinessProbe"]
    # The manifest itself is untouched.
    assert DEPLOYMENT["metadata"]["name"] == "iris"
    assert DEPLOYMENT["spec"]["replicas"] == 3


def selects(service: dict, labels: dict) -> bool:
    return endpoint_selects(service, {"metadata": {"labels": labels}})


def test_the_release_service_selects_the_release_but_no_arm() -> None:
    release_labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    assert selects(SERVICE, release_labels)
    for a in ("baseline", "canary"):
        body = arm_deployment(DEPLOYMENT, a, tag="v1", images=None, replicas=1, run_id="r")
        assert not selects(SERVICE, body["spec"]["template"]["metadata"]["labels"])


def test_live_tag_is_read_from_the_configured_image() -> None:
    live = arm_deployment(DEPLOYMENT, "baseline", tag="v7", images=None, replicas=1, run_id="r")
    assert live_tag(live, ("rolloutgate/iris",)) == "v7"
    assert live_tag(live, None) == "v7"
    assert live_tag(live, ("other/image",)) is None


def test_request_set_of_the_example(tmp_path: Path) -> None:
    items = load_request_set(REPO / "fixtures" / "requests" / "iris.jsonl", protocols.V2)
    assert len(items) == 150
    assert items[0].id == "set:iris-000"
    assert items[0].labels == (0,)
    assert {i.labels for i in items} == {(0,), (1,), (2,)}
    # Sent as the gate sends a V2 case: the body to the preset's inference path.
    assert items[0].request.method == "POST"
    assert items[0].request.path == "/v2/models/{model}/infer"
    assert items[0].request.body["inputs"][0]["data"] == [5.1, 3.5, 1.4, 0.2]


def test_request_set_of_the_wine_example_is_plain_protocol() -> None:
    golden = cases.load(REPO / "fixtures" / "wine" / "golden" / "wine.json")
    items = load_request_set(
        REPO / "fixtures" / "wine" / "requests" / "wine.jsonl", golden.protocol
    )
    assert len(items) == 178
    assert items[0].id == "set:wine-000"
    assert (items[0].request.method, items[0].request.path) == ("POST", "/predict")
    assert len(items[0].request.body["instances"][0]) == 13
    assert {i.labels for i in items} == {(0,), (1,), (2,)}


def test_request_set_lines_are_requests_of_the_golden_files_protocol(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        '{"name": "a", "request": {"body": {"instances": [[1.0]]}}, "label": [2]}\n'
        '{"method": "POST", "path": "/v1/predict", "headers": {"X-A": "b"}, "body": {}}\n'
    )
    first, second = load_request_set(path, protocols.PLAIN)
    assert first == Item(
        "set:a", Request("POST", "/predict", (), {"instances": [[1.0]]}), None, (2,)
    )
    assert second.id == "set:line-2"
    assert second.request == Request("POST", "/v1/predict", (("X-A", "b"),), {})
    path.write_text('{"inputs": []}\n')  # a V2 body is no plain request
    with pytest.raises(ConfigError, match=r"request has unknown keys \['inputs'\]"):
        load_request_set(path, protocols.PLAIN)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "request set *:1: not JSON"),
        ('{"request": {"no": 1}}', "*:1: request has unknown keys *'no'*needs \"inputs\"*"),
        (
            '{"inputs": []}\n{"name": "a", "request": {"inputs": []}}\n'
            '{"name": "a", "request": {"inputs": []}}',
            "*:3: name 'a' is used twice",
        ),
        ("# only a comment\n", "*holds no request*"),
    ],
)
def test_bad_request_set_names_file_line_and_format(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_request_set(path, protocols.V2)
    assert fnmatch.fnmatch(str(info.value), "*" + message + "*"), str(info.value)


def test_plan_measures_every_golden_case_and_cycles_the_set() -> None:
    request = Request("POST", "/predict")
    case = cases.Case("c", request)
    items = {f"golden:{k}": Item(f"golden:{k}", request, case=case) for k in range(3)}
    items |= {f"set:{k}": Item(f"set:{k}", request) for k in range(10)}
    schedule = plan(items, requests=25, warmup=4, rng=random.Random(1))
    warm = [i for i, w in schedule if w]
    measured = [i for i, w in schedule if not w]
    assert len(warm) == 4
    assert schedule[:4] == [(i, True) for i in warm]
    assert len(measured) == 25
    assert {f"golden:{k}" for k in range(3)} <= set(measured)
    assert {f"set:{k}" for k in range(10)} <= set(measured)  # the set is used up before repeats
    assert plan(items, requests=25, warmup=4, rng=random.Random(1)) == schedule


def test_canary_settings_resolve_with_defaults_and_sources(tmp_path: Path) -> None:
    tool = {
        "canary": {"requests": 300, "latency_ratio": 1.2},
        "clusters": {"s": {"canary": {"confidence": 0.99}}},
    }
    ccfg = canary_config.resolve(
        {"rolloutgate_canary_requests": None, "rolloutgate_promote": True},
        env={"ROLLOUTGATE_CANARY_MAX_FLIP_RATE": "0.1"},
        tool=tool,
        cluster="s",
        rootdir=tmp_path,
        invocation_dir=tmp_path,
    )
    assert ccfg.requests == 300
    assert ccfg.sources["canary.requests"] == "[tool.rolloutgate]"
    assert ccfg.thresholds.latency_ratio == 1.2
    assert ccfg.thresholds.confidence == 0.99
    assert ccfg.sources["canary.confidence"] == "profile s"
    assert ccfg.thresholds.max_flip_rate == 0.1
    assert ccfg.promote is True
    assert ccfg.thresholds.min_samples == 50  # the default, from Thresholds
    assert ccfg.report == tmp_path / "reports" / "canary.json"
    with pytest.raises(ConfigError, match="invalid confidence"):
        canary_config.resolve(
            {},
            env={"ROLLOUTGATE_CANARY_CONFIDENCE": "98"},
            tool={},
            cluster=None,
            rootdir=tmp_path,
            invocation_dir=tmp_path,
        )


def test_the_traffic_deadline_follows_the_requests_unless_it_is_set(tmp_path: Path) -> None:
    def resolve(options: dict[str, object], env: dict[str, str]) -> canary_config.CanaryConfig:
        return canary_config.resolve(
            options, env=env, tool={}, cluster=None, rootdir=tmp_path, invocation_dir=tmp_path
        )

    default = resolve({}, {})
    assert default.requests == 720
    # 0.5 s per request per arm, warm-up (20) included: the fixed 180 s cut a 720-request run.
    assert default.traffic_timeout == 370
    assert default.sources["canary.traffic_timeout"].startswith("default (0.5 s per request")
    assert resolve({"rolloutgate_canary_requests": 2000}, {}).traffic_timeout == 1010
    assert resolve({"rolloutgate_canary_requests": 80}, {}).traffic_timeout == 180  # the floor
    given = resolve({}, {"ROLLOUTGATE_CANARY_TRAFFIC_TIMEOUT": "120"})
    assert given.traffic_timeout == 120
    assert given.sources["canary.traffic_timeout"] == "env ROLLOUTGATE_CANARY_TRAFFIC_TIMEOUT"


def test_every_threshold_is_a_setting_with_the_default_of_thresholds(tmp_path: Path) -> None:
    # With nothing configured, the resolved thresholds are Thresholds' own defaults, field by
    # field (a setting paired with another field's default would differ here).
    ccfg = canary_config.resolve(
        {}, env={}, tool={}, cluster=None, rootdir=tmp_path, invocation_dir=tmp_path
    )
    assert ccfg.thresholds == Thresholds()
    defaults = {s.key: s.default for s in canary_config.SETTINGS}
    for f in fields(Thresholds):
        if f.name != "weights":
            assert defaults[f"canary.{f.name}"] == getattr(Thresholds(), f.name), f.name


def _judged_run(tmp_path: Path) -> CanaryRun:
    ccfg = canary_config.resolve(
        {}, env={}, tool={}, cluster=None, rootdir=tmp_path, invocation_dir=tmp_path
    )
    from rolloutgate.config import resolve

    cfg = resolve(
        {"rolloutgate_cluster": None},
        env={},
        tool={},
        rootdir=tmp_path,
        invocation_dir=tmp_path,
        list_contexts=lambda _k: [],
    )
    run = CanaryRun(cfg, ccfg, candidate_tag="v2", baseline_tag="v1")
    rng = random.Random(3)
    # One golden case, whose expectation names the value compared ("predict"), and 80 lines.
    golden = cases.parse(
        {
            "model": "iris",
            "cases": [
                {
                    "name": "g",
                    "request": {"inputs": []},
                    "expect": [{"name": "predict", "data": [0]}],
                }
            ],
        },
        tmp_path / "golden.json",
    )
    case = golden.cases[0]
    run.obs.items["golden:g"] = Item("golden:g", case.request, case=case)
    for k in range(80):
        run.obs.items[f"set:{k}"] = Item(f"set:{k}", case.request, labels=(k % 3,))
    for item_id in run.obs.items:
        k = int(item_id.removeprefix("set:")) if item_id.startswith("set:") else 0
        for arm, scale in (("baseline", 10.0), ("canary", 13.0)):
            label = (k + 1) % 3 if arm == "canary" and 0 < k < 4 else k % 3
            out = {"outputs": [{"name": "predict", "datatype": "INT64", "data": [label]}]}
            latency = scale * rng.lognormvariate(0, 0.1)
            run.obs.samples.append(Sample(item_id, arm, "ok", latency, answer=out))  # type: ignore[arg-type]
    run.judgement = judge(run.obs)
    run.seconds_to_verdict = 42.0
    run.cleanup = ["deployment iris-baseline deleted", "deployment iris-canary deleted"]
    return run


def test_reports_carry_verdict_metrics_and_charts(tmp_path: Path) -> None:
    run = _judged_run(tmp_path)
    data = canary_report.to_json(run)
    assert data["verdict"] == "fail"
    assert data["exit_status"] == 1
    assert [m["name"] for m in data["metrics"]][:3] == ["arms", "golden", "agreement"]
    json.dumps(data)  # serialisable as is
    page = canary_page.html_report(data)
    # The overlaid latency histograms, latency over time, the ECDF (no numeric outputs here).
    assert page.count("<svg") == 3
    assert page.count("<circle") == 2 * 81  # a dot per measured request
    assert page.count("<polyline") == 2  # an ECDF per arm
    assert "<polygon" in page
    assert "baseline (n=81" in page
    assert "canary (n=81" in page
    assert "<td class='flip'>1</td>" in page  # flips off the diagonal
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # no network
    md = canary_report.markdown(data)
    assert "| latency | ❌ fail |" in md
    history = tmp_path / "h.jsonl"
    canary_report.append_history(data, history)
    canary_report.append_history(data, history)
    lines = [json.loads(x) for x in history.read_text().splitlines()]
    assert len(lines) == 2
    assert lines[0]["verdict"] == "fail"
    assert lines[0]["median_ratio"] > 1.2
    assert lines[0]["flip_rate"] == pytest.approx(3 / 81)
    assert lines[0]["schema"] == 2
    assert lines[0]["run_id"] == run.run_id
    assert lines[0]["thresholds_hash"] == canary_history.thresholds_hash(data["thresholds"])
    assert lines[0]["samples"]["canary"] == {"measured": 81, "valid": 81}
    assert lines[0]["median_baseline_ms"] == pytest.approx(10, rel=0.1)
    # The accuracy drop's interval (its figures drop_low, drop_high).
    low, high = lines[0]["intervals"]["accuracy.drop"]
    assert low <= data["metrics"][3]["figures"]["drop"] <= high


def test_history_intervals_and_the_trend_of_the_last_30_runs(tmp_path: Path) -> None:
    data = canary_report.to_json(_judged_run(tmp_path))
    latency = next(m for m in data["metrics"] if m["name"] == "latency")
    latency["figures"]["median_ratio_ci"] = [1.21, 1.36]
    history = tmp_path / "h.jsonl"
    for _ in range(31):
        canary_report.append_history(data, history)
    with history.open("a") as f:
        f.write('{"verdict": "pass", "sco')  # a line cut short by a killed job
    runs = canary_report.read_history(history)
    assert len(runs) == 30
    assert runs[-1]["intervals"]["latency.median_ratio"] == [1.21, 1.36]
    page = canary_page.html_report(data, runs)
    assert "<td>latency.median_ratio</td><td>1.21</td><td>1.36</td>" in page
    assert "score of the last 30 runs" in page
    # 162 request dots and 30 runs' dots.
    assert page.count("<circle") == 2 * 81 + 30
    # Thresholds differ, hash differs.
    other = {**data["thresholds"], "confidence": 0.99}
    thresholds_hash = canary_history.thresholds_hash
    assert thresholds_hash(other) != thresholds_hash(data["thresholds"])


def test_an_infrastructure_error_is_inconclusive() -> None:
    j = error_judgement("ClusterUnreachable: no answer")
    assert j.verdict == "inconclusive"
    assert j.exit_status == 7
    assert all(m.verdict == "nodata" for m in j.metrics)


def test_the_verdict_is_recomputed_from_the_json_report_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rolloutgate.__main__ import main

    run = _judged_run(tmp_path)
    run.obs.traffic_started = 1_700_000_000.0
    data = canary_report.to_json(run)
    samples = data["evidence"]["samples"]
    assert len(samples) == 2 * 81
    first = samples[0]
    assert {"item", "arm", "pod", "index", "at", "t", "outcome", "latency_ms"} <= set(first)
    assert first["t"] == 1_700_000_000.0 + first["at"]
    report = tmp_path / "canary.json"
    canary_report.write_json(data, report)
    assert main(["canary-verdict", str(report)]) == 1
    out = capsys.readouterr().out
    assert f"{report}: FAIL (score {data['score']:g})" in out
    assert "the report's verdict and score are the same" in out
    # Evidence edited (the canary's slow answers made fast): the verdict follows the evidence.
    for s in samples:
        s["latency_ms"] = 10.0
    canary_report.write_json(data, report)
    assert main(["canary-verdict", str(report)]) == 6
    assert f"the report says fail (score {data['score']}): the verdicts differ" in (
        capsys.readouterr().out
    )
    report.write_text("{}")
    assert main(["canary-verdict", str(report)]) == 4
    assert "not the evidence of a canary report of schema 1" in capsys.readouterr().err


def test_a_refused_promotion_is_reported_with_its_reason_and_exit_status(tmp_path: Path) -> None:
    from rolloutgate.canary import promote

    run = _judged_run(tmp_path)
    run.promotion = promote.refused("v2", "v1", "v3")
    data = canary_report.to_json(run)
    assert data["exit_status"] == 7
    summary = "\n".join(canary_report.summary_lines(data))
    assert "promotion of v2: refused (exit 7): the live release changed during the canary" in (
        summary
    )
    assert "it ran v1 when the canary started and runs v3" in canary_report.markdown(data)
    assert "refused" in canary_page.html_report(data)


def test_the_arms_are_reached_at_their_pod_ips_in_a_pod_of_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``canary.reach``: auto is the pods' IPs where the gate runs with the in-cluster
    configuration (the pod network reaches them), else a port-forward; a bad value names the
    accepted ones."""
    from rolloutgate.canary import measure
    from rolloutgate.kube import connection

    def resolve(env: dict[str, str]) -> canary_config.CanaryConfig:
        return canary_config.resolve(
            {}, env=env, tool={}, cluster=None, rootdir=tmp_path, invocation_dir=tmp_path
        )

    assert resolve({}).reach == "auto"
    assert resolve({"ROLLOUTGATE_CANARY_REACH": "Pod-IP"}).reach == "pod-ip"
    with pytest.raises(ConfigError, match=r"invalid reach 'ip'.*auto, port-forward, pod-ip"):
        resolve({"ROLLOUTGATE_CANARY_REACH": "ip"})

    # Outside the cluster (a kubeconfig): a port-forward; in a pod: the pod IPs.
    cfg = gate_config(kubeconfig=None)
    token = tmp_path / "token"
    monkeypatch.setattr(connection, "IN_CLUSTER_TOKEN", token)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    assert measure.resolved_reach("auto", cfg) == "port-forward"  # no token: not in a pod
    token.write_text("t")
    assert measure.resolved_reach("auto", cfg) == "pod-ip"
    assert measure.resolved_reach("port-forward", cfg) == "port-forward"
    assert measure.resolved_reach("auto", gate_config(kubeconfig=tmp_path / "k")) == (
        "port-forward"
    )

    pod = {"metadata": {"name": "iris-canary-0"}, "status": {"podIP": "10.244.0.7"}}
    assert measure.pod_ip_url(pod, 8080) == "http://10.244.0.7:8080"
    assert measure.pod_ip_url({**pod, "status": {"podIP": "fd00::7"}}, 8082) == (
        "http://[fd00::7]:8082"
    )
    with pytest.raises(ClusterError, match="pod iris-canary-0 has no pod IP"):
        measure.pod_ip_url({**pod, "status": {}}, 8080)

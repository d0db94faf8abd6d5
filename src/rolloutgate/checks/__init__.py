"""What the gate judges: the model server's answers and the pods' states.

    cases        golden cases for any HTTP JSON server: requests, expectations, ``HttpClient``
                 (the one golden/request stack: the gate, recording and the canary)
    httpclient   the request of a case and ``HttpClient``, which sends it; ``client_for``
    loopback     requests to the gate's own forwards straight through urllib3 (``requests``'
                 answers and errors, without the session's per-request work)
    protocols    the presets (v2, v1, plain): prediction path, health checks
    client       the V2 client, ``EndpointUnreachable``, ``describe``, ``wait_answering``
    latency      the one ``percentile``, the golden file's latency budget, ``measure_latency``
    credentials  headers and URL credentials on the one session the checks use
    metrics      the server's request counter, read on every pod of the release
    recording    a golden file from the live release's answers (``python -m rolloutgate record``)
    detect       which protocol a live server speaks (``rolloutgate init``)
    warmup       requests to each new pod before the latency budget, untimed
    fanout       every replica asked at once, a bounded number at a time (``each``)
    loadtime     each new pod's start-to-Ready time (the model's load time)
    inpod        the in-pod checks' container, its shell, an ephemeral debug container
    podjudge     the verdict on a release's pods since the apply (fail-fast)
    pods         kind-agnostic pod rules: failure reasons, readiness, log tails
    podhistory   exits since a baseline (``Restarts``)
    readiness    never-ready rules (``ready_grace``)
    scheduling   unschedulable pods and autoscalers

May import: ``rolloutgate.kube`` and below (``config``, ``manifests``, ``redact``, ``objects``,
``errors``); never the workloads, the release, the canary or the pytest layer.
"""

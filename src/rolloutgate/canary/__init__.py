"""The canary: a candidate judged against the live release, side by side, without touching it.

    inputs        everything local (golden file, request set, manifests), checked first
    run           a canary run: the release's lease, arms, judgement, clean-up, the promotion
    arms          the arms' objects, the live tag, their start (rollout rules) and deletion
    measure       on running arms: health, port-forwards, traffic, the servers' own metric
    promote       ``--promote``: the release gate as a child process under the canary's lease
    traffic       request sets (in the golden file's protocol), the plan, the traffic to both arms
    observations  what a run saw: items, samples, the arms' failures (pure data)
    metrics       the metrics' names, groups and order; ``Metric``
    predictions   golden cases, label agreement, accuracy, numeric differences
    stats         the paired statistics (latency ratio, McNemar, sample sizes)
    latency       the latency metrics (paired ratio, budgets), the warm-up's sample size
    errorrate     the errors metric (Fisher's exact test, success-rate floor)
    judge         the judgement: arms, stability, score, Pass/Marginal/Fail/Inconclusive
    thresholds    every threshold's default, in one place
    config        the canary's settings (``canary.*``), resolved like the gate's
    report        the files of a run (JSON, history line, HTML page, step summary), the
                  terminal summary
    history       a run's line in the history; the confidence intervals of a report
    page          the HTML page of a report
    charts        its charts (inline SVG)
    evidence      every input and sample as JSON and back; the verdict recomputed from it

May import: ``rolloutgate.release`` (the engine's steps) and below; never the pytest layer.
"""

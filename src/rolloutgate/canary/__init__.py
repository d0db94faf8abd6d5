"""The canary: a candidate judged against the live release, side by side, without touching it.

    run           a canary run: arms, waits, health, traffic, judgement, clean-up
    promote       ``--promote``: the release gate as a child process
    traffic       request sets (in the golden file's protocol), the plan, the traffic to both arms
    observations  what a run saw: items, samples, the arms' failures (pure data)
    metrics       the metrics' names, groups and order; ``Metric``
    predictions   golden cases, label agreement, accuracy, numeric differences
    stats         the paired statistics (latency ratio, McNemar, sample sizes); latency, errors
    judge         the judgement: arms, stability, score, Pass/Marginal/Fail/Inconclusive
    thresholds    every threshold's default, in one place
    config        the canary's settings (``canary.*``), resolved like the gate's
    report        JSON, Markdown, HTML and history of a run

May import: ``rolloutgate.release`` (the engine's steps) and below; never the pytest layer.
"""

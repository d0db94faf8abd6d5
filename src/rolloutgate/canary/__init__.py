"""The canary: a candidate judged against the live release, side by side, without touching it.

    run         a canary run: arms, waits, health, traffic, judgement, clean-up; promotion
    traffic     request sets and the interleaved traffic to both arms
    judge       the judgement: per-metric verdicts, score, Pass/Marginal/Fail/Inconclusive
    thresholds  every threshold's default, in one place
    config      the canary's settings (``canary.*``), resolved like the gate's
    report      JSON, Markdown, HTML and history of a run

May import: ``rolloutgate.release`` (the engine's steps) and below; never the pytest layer.
"""

"""The pytest layer: the gate as pytest runs it (the CLI of the release engine).

    plugin         options (from the one settings table), configure, registration (``pytest11``)
    fixtures       the fixture chain: each fixture asks the engine for one step's result
    http_fixtures  ``rolloutgate_http``, ``rolloutgate_metrics``
    hooks          ``GateHooks``: the run's state, golden-case parametrization, outcomes,
                   interrupts, reports
    canary         ``--canary``: one item per metric, exit status, reports
    waves          a profile of waves: one item per cluster, the run's JSON
    takeover       the base of both: the suite's items replaced, SIGTERM as an interrupt
    cmdline        command lines refused before anything runs
    terminal       the live progress line writer and the SIGTERM set-up

May import anything below it; nothing imports it but pytest (through the entry point).
"""

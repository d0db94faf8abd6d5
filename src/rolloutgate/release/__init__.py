"""The release: the engine and its steps.

    engine       ``Release``: the steps in order, each under its deadline, timed, recorded
    holding      the target's lease as a release holds it: taken, renewed, lost, released
    change       the snapshot, the plan and its dry-run, the apply (``--verify``: the live)
    ending       the end of a release: rollback and its verification, recovery, diagnostics
    verify       reaching a release (endpoint, replicas) and proving it healthy
    routing      until the Service's endpoints hold only ready pods of the release
    plan         what to apply: paused workloads, HPA targets, configuration-only changes
    dryrun       ``--dry-run`` into a namespace that does not exist
    record       the release record in the cluster (``Tracker``)
    target       the restore target a record keeps, and its snapshot to restore
    process      which process writes a record, and whether one it names is gone
    rollout      waiting for every workload of a release at once, fail-fast on broken pods
    diagnostics  events, pod states, logs, history of a failed workload
    rollback     the exact restore of a snapshot, per object
    prepare      the manifests rendered and tagged; what they name (Service, lease)
    apply        server-side dry-run and apply, the ``--dry-run`` diff
    autoscale    HPA targets and the handover of ``spec.replicas``
    lock         the target's Lease: acquire, keep, release
    snapshot     the live objects the manifests touch, before the apply
    report       the run's record (``GateRun``) and its JSON and Markdown reports

May import: ``rolloutgate.checks``, ``rolloutgate.workloads``, ``rolloutgate.kube`` and below;
never the canary or the pytest layer (they drive the engine).
"""

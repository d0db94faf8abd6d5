"""``rolloutgate init``: a team's repository set up for the gate in one command.

    target    what the manifests say: the Service, port, workload, serving container, image
    files     the files written (the suite, pyproject.toml's tables, the golden file, the CI
              workflow), never over an existing one without ``--force``
    command   the run: render, reach the live release, detect its protocol, record its answers,
              write, say the next command

Next to ``pytest`` and ``__main__`` at the top of the layers: may import every package below
(``release`` for the engine's steps, ``checks``, ``workloads``, ``kube``, ``config``, ...).
"""

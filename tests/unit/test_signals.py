"""The run's signals when the gate was started with SIGINT ignored (a background job of a
non-interactive shell): a lost lease and a cancel must still interrupt the main thread."""

from __future__ import annotations

import signal
import subprocess
import sys

CHILD = """
import _thread, signal, threading, time
from rolloutgate.pytest.terminal import SigtermAsInterrupt

signals = SigtermAsInterrupt()
signals.install()
# What the lease's renewal thread does when the lease is lost.
threading.Timer(0.2, _thread.interrupt_main).start()
try:
    for _ in range(200):  # interrupt_main is seen between bytecodes, not inside a long sleep
        time.sleep(0.1)
    print("not interrupted")
except KeyboardInterrupt:
    print("interrupted")
signals.restore()
print("ignored again" if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else "changed")
"""


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_an_inherited_ignored_sigint_is_handled_while_the_run_lasts_and_put_back() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_ignore_sigint,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["interrupted", "ignored", "again"], proc.stdout


AFTER_THE_RUN = """
import os, signal, sys, time
from rolloutgate.pytest.terminal import SigtermAsInterrupt

signals = SigtermAsInterrupt()
signals.install()
signals.note_later(print, "finishing the interrupted run")
signals.restore()  # pytest unconfigures; the process has not ended yet
os.kill(os.getpid(), signal.SIGTERM)  # the runner's SIGTERM, seconds after its SIGINT
time.sleep(0.2)
print("exited with the rollback's status")
# The interpreter's shutdown puts back the default for a handler written in Python; an
# ignored signal stays ignored to the end of the process.
print("ignored" if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN else "handled in Python")
sys.exit(2)
"""


def test_a_sigterm_after_an_interrupted_run_ended_keeps_the_exit_status() -> None:
    """CI's cancel: SIGINT, then SIGTERM 7.5 s later. When the rollback and the reports are
    done before it, the SIGTERM can land while pytest exits or while the interpreter shuts
    down: it must not turn exit 2 into -15."""
    proc = subprocess.run(
        [sys.executable, "-c", AFTER_THE_RUN], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stdout.splitlines()[-2:] == ["exited with the rollback's status", "ignored"]

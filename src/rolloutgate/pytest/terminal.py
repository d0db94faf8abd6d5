"""The terminal and the signals of a run: shared by the gate's hooks and the canary's plugin."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from contextlib import nullcontext
from types import FrameType
from typing import Any, NoReturn

import pytest


def writer(config: pytest.Config) -> Callable[[str], None]:
    """Write a line to the terminal now, past output capturing (live progress)."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")

    def write(line: str) -> None:
        if tr is None:
            return
        with capman.global_and_fixture_disabled() if capman else nullcontext():
            tr.write_line(line)

    return write


class SigtermAsInterrupt:
    """SIGTERM (a cancelled CI job) raised as KeyboardInterrupt("SIGTERM") in the main thread, so
    that teardowns, the rollback and the canary's clean-up run as for Ctrl+C; ``restore`` puts
    back the handlers replaced (SIGTERM, and SIGINT when ``note_later`` replaced it)."""

    def __init__(self) -> None:
        self._saved: dict[int, Any] = {}
        self._noting = False  # an interrupt was handled: only the clean-up is left

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread

        def on_sigterm(signum: int, _frame: FrameType | None) -> NoReturn:
            raise KeyboardInterrupt("SIGTERM")

        self._replace(signal.SIGTERM, on_sigterm)
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            # Inherited: a run started in the background by a non-interactive shell (`nohup
            # pytest ... &`, some CI harnesses) ignores SIGINT. Then a cancel's SIGINT never
            # rolls back, and a lost lease cannot stop the step (the renewal thread interrupts
            # the main thread through SIGINT's handler, which does nothing while ignored).
            self._replace(signal.SIGINT, signal.default_int_handler)

    def note_later(self, write: Callable[[str], None], doing: str) -> None:
        """After the first interrupt only the clean-up is left, each step under its deadline: a
        second SIGINT or SIGTERM (CI sends SIGTERM 7.5 s after SIGINT) is said, not obeyed.
        SIGKILL still ends the run."""
        if threading.current_thread() is not threading.main_thread():
            return

        def note(signum: int, _frame: FrameType | None) -> None:
            write(f"rolloutgate: {signal.Signals(signum).name} received while {doing}")

        self._noting = True

        self._replace(signal.SIGINT, note)
        self._replace(signal.SIGTERM, note)

    def restore(self) -> None:
        """Put back the replaced handlers, except after an interrupt: then the run has ended
        but the process has not (pytest's exit, the interpreter's shutdown), and the runner's
        SIGTERM that follows its SIGINT by seconds would end it with -15 in place of the exit
        status the rollback earned. So until the process ends both are ignored (SIG_IGN: a
        handler of ours would not do, the interpreter's shutdown puts back the default before
        the process is gone); SIGKILL still ends it."""
        if threading.current_thread() is not threading.main_thread():
            return
        if self._noting:
            for signum in self._saved:
                signal.signal(signum, signal.SIG_IGN)
            return
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)
        self._saved.clear()

    def _replace(self, signum: int, handler: Callable[[int, FrameType | None], Any]) -> None:
        previous = signal.signal(signum, handler)
        self._saved.setdefault(signum, previous)  # the first one is what restore puts back

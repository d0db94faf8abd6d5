"""Which process writes a release record, and whether a process a record names is gone.

A gate waiting for a lease may take it over at once when the holder's record names a process
of this same machine that no longer runs (``record.holder_gone``); a holder elsewhere is
waited for until its lease expires. Enough of the process is kept to be certain: host name,
boot id, pid namespace, pid and start time (a reused pid has another start time).
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any

from rolloutgate.objects import Obj


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """Field 22 of /proc/PID/stat: the process's start time (a reused pid has another)."""
    stat = _read(f"/proc/{pid}/stat")
    # The command name (field 2) may contain spaces: split after its closing parenthesis.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def this_process() -> dict[str, Any]:
    pid_ns = ""
    with contextlib.suppress(OSError):
        pid_ns = str(os.stat("/proc/self/ns/pid").st_ino)
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "boot_id": _read("/proc/sys/kernel/random/boot_id"),
        "pid_ns": pid_ns,
        "pid": pid,
        "start": _start_ticks(pid),
    }


def process_gone(process: Obj) -> bool:
    """True only when certain: the process ran on this machine (same host name, boot and pid
    namespace) and no process with its pid and start time exists any more."""
    here = this_process()
    same_machine = all(
        process.get(k) and process.get(k) == here[k] for k in ("host", "boot_id", "pid_ns")
    )
    if not same_machine or not isinstance(process.get("pid"), int):
        return False
    pid = int(process["pid"])
    if not Path(f"/proc/{pid}").exists():
        return True
    return bool(process.get("start")) and _start_ticks(pid) != process.get("start")

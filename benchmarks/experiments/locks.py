"""Locks that say who holds them: one per run directory, one per launched sweep stage.

    with DirectoryLock(run_directory, "run"):   # LockHeld if another live process holds it
        ...

A lock is ``fcntl.flock`` on ``<directory>/.lock``: the kernel releases it when its process ends
however it ends (``kill -9`` included), so a lock is never stale; the file also records the
holder's pid, host and start time, which ``LockHeld`` and ``holder()`` report. Shared
filesystems: Linux NFS (v4, or v3 with lockd) maps ``flock`` to byte-range locks that every host
sees.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

LOCK_FILE = ".lock"


class LockHeld(RuntimeError):
    """Another live process holds the lock."""


class DirectoryLock:
    def __init__(self, directory: str | Path, what: str = "directory", name: str = LOCK_FILE) -> None:
        self.path = Path(directory) / name
        self.what = what
        self._handle = None

    def holder(self) -> dict | None:
        """Who holds the lock (pid, host, since), or None if nobody does."""
        if not self.path.is_file():
            return None
        with open(self.path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                try:
                    return json.loads(handle.read() or "{}")
                except json.JSONDecodeError:
                    return {}
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None

    def describe(self, holder: dict) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["since"])) if "since" in holder else "?"
        return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} (since {since})"

    def acquire(self) -> "DirectoryLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except json.JSONDecodeError:
                holder = {}
            handle.close()
            raise LockHeld(f"{self.what} {self.path.parent} is held by {self.describe(holder)}; wait for it "
                           "to end, or stop that process") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}))
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "DirectoryLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

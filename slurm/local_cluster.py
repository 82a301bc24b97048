"""A real single-node SLURM cluster on localhost, started and stopped from Python (for tests).

    from slurm.local_cluster import LocalSlurmCluster

    ok, reason = LocalSlurmCluster.available()        # binaries on PATH and running as root
    with LocalSlurmCluster() as cluster:               # ~1 s to an idle node
        executor = submitit.AutoExecutor(folder=tmp, cluster="slurm")
        executor.update_parameters(slurm_partition=cluster.partition, timeout_min=2)
        jobs = executor.map_array(math.factorial, [1, 2, 3])
        print([job.result() for job in jobs])
        print(cluster.squeue())                        # {"12_0": "COMPLETED", ...}

Install the daemons first: ``bash slurm/install.sh`` (Debian's ``slurm-wlm`` and ``munge``).

What ``start()`` does, everything under a fresh temporary directory (``cluster.root``):

* writes a random munge key (0400, owned by root: munged refuses a key readable by others)
  and runs ``munged --foreground`` with its own socket, pid, log and seed files, so it neither
  needs nor disturbs a system munged;
* writes ``slurm.conf`` (``slurm.cluster_config.slurm_conf``: one node, one partition, free ports,
  no cgroups, no accounting, short timeouts; ``select/linear`` if the node does not come up with
  ``select/cons_tres``, and new ports if one was taken between picking and binding);
* writes ``cgroup.conf`` with ``CgroupPlugin=cgroup/v1``: slurmd loads a cgroup plugin whatever
  the other plugins, and autodetection picks cgroup/v2 on a unified or hybrid hierarchy, which
  needs systemd (or a writable cgroupfs) and aborts in containers; v1 loads anywhere and is unused;
* runs ``slurmctld -D -f slurm.conf`` and ``slurmd -D -N localhost -f slurm.conf`` as child
  processes (``-N localhost``: the machine's hostname is not ``localhost``);
* waits until ``sinfo`` reports the node idle, and raises ``SlurmClusterError`` with the tail of
  every daemon log if a daemon exits or the node does not come up in time.

Clients find the cluster through ``SLURM_CONF``: ``cluster.env`` holds it (and ``PATH`` with the
``sacct`` shim below); inside ``with`` these are also set in ``os.environ`` (restored on exit),
so ``sbatch``/``squeue``/``scancel`` and submitit need no further setup. Every client call made
here (``sinfo``, ``squeue``, ``scontrol``, ``scancel``) has a subprocess timeout: they block for
``MessageTimeout`` seconds and more when slurmctld is down.

``stop()`` stops slurmd, slurmctld and munged by the pids it started them with (never by name:
other clusters and daemons may run on the machine) and waits for them (SIGKILL after a grace
period); it then SIGKILLs what is left of running jobs: the slurmstepd processes (found by a
variable holding this cluster's unique directory, which they inherit from slurmd's environment)
and their descendants (batch scripts, srun, the jobs' processes). Running jobs are not scancel'ed
first: slurmd would wait max(KillWait, 5 s) for them (submitit jobs ignore SIGTERM). Then it
removes the directory (unless ``keep=True``). The daemons also get SIGTERM if the process that started them dies
(``PR_SET_PDEATHSIG``), so a killed test run leaves no daemons behind (the directory stays).

Accounting: ``sacct`` needs slurmdbd (and a database), which this cluster does not run. Without
it submitit still collects results (it reads the result pickles) but reads every state as
``UNKNOWN``, so ``job.result()`` of a cancelled or killed job would wait forever. With
``sacct_shim=True`` (the default) ``cluster.env["PATH"]`` starts with a directory holding a tiny
``sacct`` that answers submitit's query (``sacct -o JobID,State,NodeList --parsable2 -j ...``)
from ``squeue --states=all``; finished jobs stay visible to squeue for ``MinJobAge`` (1 h here).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .cluster_config import SACCT_SHIM, free_ports, kill_marked_processes, node_hardware, slurm_conf, which

DAEMONS = ("munged", "slurmctld", "slurmd")
_MARKER = "REFT_LOCAL_SLURM_ROOT"  # in the daemons' environment only
CLIENTS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol", "srun")

class SlurmClusterError(RuntimeError):
    """The local cluster failed to start (the message holds the daemon logs' tails)."""


def _die_with_parent() -> None:
    """In the forked child before exec: SIGTERM when the process that started the cluster dies (Linux),
    so a killed test run does not leave daemons behind."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


_NOISE = re.compile(r"pmix|PMIx|MPI: Cannot create context|Could not open \w+ state file|Trying backup state save")


def _tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log, without the start-up noise every run logs (missing PMIx, no saved state)."""
    try:
        text = [l for l in path.read_text(errors="replace").splitlines() if not _NOISE.search(l)]
    except OSError as e:
        return f"  (no log: {e})"
    return "\n".join("  " + l for l in text[-lines:]) or "  (empty)"


class LocalSlurmCluster:
    """munged + slurmctld + slurmd on localhost in a temporary directory; a context manager.

    Args:
        partition: the one partition's name.
        root: directory for all state (created if missing); default: a fresh ``mkdtemp``.
        keep: leave ``root`` (configs, logs, state) on disk after ``stop()``.
        startup_timeout: seconds to wait for the node to become idle.
        client_timeout: subprocess timeout (s) of every client call.
        sacct_shim: put an squeue-backed ``sacct`` first on ``env["PATH"]`` (see module docstring).

    Attributes (after ``start()``): ``root``, ``conf_path``, ``env`` (``SLURM_CONF`` and ``PATH``
    for clients), ``partition``, ``node`` (``"localhost"``), ``cluster_name`` (``"local"``),
    ``ports`` (``{"slurmctld": .., "slurmd": ..}``), ``select_type``, ``node_hardware``,
    ``munge_socket``, ``logs`` (daemon name -> log path), ``procs`` (daemon name -> Popen),
    ``startup_s`` (seconds ``start()`` took), ``first_job_id`` (random, so job ids differ between
    clusters: submitit caches job states by id), ``fallback_reason`` (why select/cons_tres failed,
    when the cluster runs select/linear; else None).
    """

    node = "localhost"
    cluster_name = "local"

    def __init__(self, partition: str = "debug", *, root: str | os.PathLike | None = None, keep: bool = False,
                 startup_timeout: float = 30.0, client_timeout: float = 10.0, sacct_shim: bool = True):
        self.partition = partition
        self._root_arg = root
        self.keep = keep
        self.startup_timeout = startup_timeout
        self.client_timeout = client_timeout
        self.sacct_shim = sacct_shim
        self.root: Path | None = None
        self.conf_path: Path | None = None
        self.env: dict[str, str] = {}
        self.ports: dict[str, int] = {}
        self.select_type = "select/cons_tres"
        self.node_hardware = ""
        self.munge_socket: Path | None = None
        self.logs: dict[str, Path] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.startup_s: float | None = None
        self.first_job_id = 1
        self.fallback_reason: str | None = None  # why select/cons_tres failed, when select/linear is used
        self._saved_environ: dict[str, str | None] | None = None

    # ------------------------------------------------------------------ availability
    @staticmethod
    def available() -> tuple[bool, str]:
        """(True, "") when the daemons and clients are on PATH and we are root, else (False, why)."""
        missing = [b for b in DAEMONS + CLIENTS if which(b) is None]
        if missing:
            return False, f"SLURM not installed (missing {', '.join(missing)}; run `bash slurm/install.sh`)"
        if os.geteuid() != 0:
            return False, "a local SLURM cluster needs root (slurmd runs jobs as the submitting user)"
        return True, ""

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> "LocalSlurmCluster":
        self.start()
        self._saved_environ = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        finally:
            for k, v in (self._saved_environ or {}).items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            self._saved_environ = None

    # ------------------------------------------------------------------ clients
    def run(self, *args: str, timeout: float | None = None, check: bool = False) -> subprocess.CompletedProcess:
        """Run a SLURM client against this cluster (``cluster.run("squeue", "-h")``), with a timeout."""
        env = {**os.environ, **self.env}
        return subprocess.run(list(args), env=env, capture_output=True, text=True, check=check,
                              timeout=self.client_timeout if timeout is None else timeout)

    def squeue(self, *job_ids: str | int) -> dict[str, str]:
        """Job id (``123``, array task ``123_4``) -> state (``RUNNING``, ``COMPLETED``, ``CANCELLED``...),
        finished jobs included."""
        args = ["squeue", "--noheader", "--states=all", "--array", "--format=%i %T"]
        if job_ids:
            args.append("--jobs=" + ",".join(str(j) for j in job_ids))
        out = self.run(*args, check=True).stdout
        return dict(line.split()[:2] for line in out.splitlines() if line.strip())

    def node_state(self) -> str:
        """``sinfo``'s state of the node (``idle``, ``mixed``, ``alloc``, ``down*``...), "" if unreachable."""
        try:
            r = self.run("sinfo", "--noheader", "--Node", "--nodes", self.node, "--format=%T", timeout=5)
        except subprocess.TimeoutExpired:
            return ""
        return r.stdout.strip().splitlines()[0].strip() if r.returncode == 0 and r.stdout.strip() else ""

    # ------------------------------------------------------------------ start
    def start(self) -> "LocalSlurmCluster":
        ok, reason = self.available()
        if not ok:
            raise SlurmClusterError(reason)
        t0 = time.monotonic()
        if self._root_arg is None:
            base = os.environ.get("TMPDIR", "/tmp")
            if len(base) > 40:  # unix socket paths are limited to 107 bytes
                base = "/tmp"
            self.root = Path(tempfile.mkdtemp(prefix="reft-slurm-", dir=base))
        else:
            self.root = Path(self._root_arg).resolve()
            self.root.mkdir(parents=True, exist_ok=True)
        # munged wants its socket's directory and every ancestor searchable by all (0755), and its
        # key's directory private: socket in run/, key in munge/.
        os.chmod(self.root, 0o755)
        for sub in ("munge", "log", "state", "spool", "run", "bin"):
            (self.root / sub).mkdir(exist_ok=True)
            os.chmod(self.root / sub, 0o700 if sub == "munge" else 0o755)
        self.conf_path = self.root / "slurm.conf"
        self.logs = {name: self.root / "log" / f"{name}.log" for name in DAEMONS}
        self.env = {"SLURM_CONF": str(self.conf_path)}
        if self.sacct_shim:
            shim = self.root / "bin" / "sacct"
            shim.write_text(SACCT_SHIM)
            shim.chmod(0o755)
            self.env["PATH"] = f"{shim.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self.node_hardware = node_hardware()
        # job ids unlike other clusters' in this process: submitit's state cache is keyed by job id alone
        self.first_job_id = random.randrange(1000, 1_000_000, 1000)
        try:
            self._start_munged()
            self._start_slurm_with_retries()
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def _start_munged(self) -> None:
        key = self.root / "munge" / "munge.key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(1024))
        os.chown(key, os.geteuid(), os.getegid())
        os.chmod(key, 0o400)
        self.munge_socket = self.root / "run" / "munge.socket"
        self._spawn("munged", ["munged", "--foreground", f"--socket={self.munge_socket}", f"--key-file={key}",
                               f"--pid-file={self.root / 'run' / 'munged.pid'}",
                               f"--log-file={self.logs['munged']}", f"--seed-file={self.root / 'munge' / 'seed'}"])
        deadline = time.monotonic() + 10
        while not self.munge_socket.exists():
            self._check_alive("munged")
            if time.monotonic() > deadline:
                raise SlurmClusterError("munged did not create its socket in 10 s\n" + self._log_tails())
            time.sleep(0.05)

    def _start_slurm_with_retries(self, max_attempts: int = 3) -> None:
        """select/cons_tres; on a port clash (a picked port taken meanwhile) the same with new ports;
        on any other failure select/linear. A failed attempt's logs stay as log/*.attemptN.*."""
        self.select_type = "select/cons_tres"
        failures: list[str] = []
        for attempt in range(1, max_attempts + 1):
            try:
                self._start_slurm()
                return
            except SlurmClusterError as e:
                self._stop_slurm_daemons()
                failures.append(f"attempt {attempt} ({self.select_type}): {str(e).splitlines()[0]}")
                for log in (self.root / "log").glob("slurm*"):
                    if ".attempt" not in log.name:
                        log.rename(log.with_name(log.name.replace(".", f".attempt{attempt}.", 1)))
                port_clash = "Address already in use" in str(e)
                if attempt == max_attempts or (not port_clash and self.select_type == "select/linear"):
                    raise SlurmClusterError(f"{e}\n(failed start-up attempts: {'; '.join(failures)}; "
                                            f"their logs: {self.root / 'log'}/*.attempt*, kept with keep=True)") from None
                if not port_clash:
                    self.fallback_reason = str(e)
                    self.select_type = "select/linear"

    def _start_slurm(self) -> None:
        ctld_port, slurmd_port = free_ports(2)
        self.ports = {"slurmctld": ctld_port, "slurmd": slurmd_port}
        for sub in ("state", "spool"):
            shutil.rmtree(self.root / sub, ignore_errors=True)
            (self.root / sub).mkdir(mode=0o755)
        # slurmd always loads a cgroup plugin; "autodetect" picks cgroup/v2 on a unified or hybrid
        # hierarchy, which wants systemd (or a writable cgroupfs) and aborts in containers ("Hybrid
        # mode is not supported"). cgroup/v1 loads anywhere and, with linuxproc/task none, is unused.
        (self.root / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\nCgroupAutomount=no\n")
        self.conf_path.write_text(slurm_conf(self))
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf_path)])
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf_path)])
        deadline = time.monotonic() + self.startup_timeout
        state = ""
        while True:
            for name in DAEMONS:
                self._check_alive(name)
            state = self.node_state()
            if state == "idle":
                return
            # drained/invalid: slurmd registered with a config slurmctld rejects; no point waiting
            bad = state.rstrip("*~#!%$@^-+") in ("drained", "draining", "inval", "fail", "failing")
            if bad or time.monotonic() > deadline:
                reason = ""
                try:
                    reason = self.run("sinfo", "--noheader", "-R", timeout=5).stdout.strip()
                except subprocess.TimeoutExpired:
                    pass
                waited = "" if bad else f" after {self.startup_timeout:.0f} s"
                raise SlurmClusterError(
                    f"node {self.node} not idle{waited} ({self.select_type}): "
                    f"state {state or 'unreachable'!r} {reason}\n{self._log_tails()}")
            time.sleep(0.2)

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.root / "log" / f"{name}.out", "ab")
        # the marker is inherited by slurmstepd (forked by slurmd, then reparented to init): see _kill_leftovers
        env = {**os.environ, **self.env, _MARKER: str(self.root)}
        argv = [which(argv[0]) or argv[0], *argv[1:]]
        try:
            self.procs[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                                env=env, cwd=self.root,
                                                start_new_session=True, preexec_fn=_die_with_parent)
        finally:
            out.close()

    def _check_alive(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            raise SlurmClusterError(f"{name} exited with code {proc.returncode} during start-up "
                                    f"({self.select_type})\n{self._log_tails()}")

    def _log_tails(self) -> str:
        parts = []
        for name in DAEMONS:  # munged --foreground logs to stderr (the .out file), slurm daemons to both
            log, out = self.logs[name], self.root / "log" / f"{name}.out"
            if log.exists() or not out.exists():
                parts.append(f"--- {log} (tail)\n{_tail(log)}")
            if out.exists() and out.stat().st_size:
                parts.append(f"--- {out} (tail)\n{_tail(out)}")
        return "\n".join(parts)

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Stop the daemons by pid, SIGKILL this cluster's leftover job processes, remove ``root``
        (unless ``keep``)."""
        if self.root is None:
            return
        try:
            self._stop_slurm_daemons()
            self._kill_leftovers()
            self._terminate("munged")
        finally:
            if not self.keep:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None

    def _stop_slurm_daemons(self) -> None:
        self._terminate("slurmd")
        self._terminate("slurmctld")

    def _terminate(self, name: str, grace: float = 10.0) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def _kill_leftovers(self) -> None:
        """SIGKILL what is left of this cluster's jobs once slurmd is gone: the slurmstepd processes
        (they outlive slurmd, reparented to init; found by the marker variable they inherit from
        slurmd's environment, holding this cluster's unique directory) and all their descendants
        (batch scripts, srun, the jobs' processes). Never by process name."""
        kill_marked_processes(f"{_MARKER}={self.root}".encode(),
                              exclude={proc.pid for proc in self.procs.values()} | {os.getpid()})

    def __repr__(self) -> str:
        return (f"LocalSlurmCluster(partition={self.partition!r}, root={str(self.root)!r}, "
                f"ports={self.ports}, select={self.select_type!r})")


__all__ = ["LocalSlurmCluster", "SlurmClusterError"]

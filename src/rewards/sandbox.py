"""Run untrusted programs against their tests in a sandboxed subprocess.

``run_program(program, tests, limits)`` runs ``sandbox_runner.py`` in a fresh subprocess and returns the
per-test results. Layers, outermost first (each used where this machine allows it):

* its own temporary directory as working directory, HOME and TMPDIR; an environment holding nothing
  but PATH, HOME, TMPDIR, the locale and thread counts (no secrets to read); standard input empty;
* a new session (process group) that is killed when the run ends; a wall-time limit, with a backstop
  inside the run that ends it even when the scorer is gone;
* Linux namespaces via ``unshare``: a new network namespace (no network: only a loopback that is
  down) and a new pid namespace (the run sees only its own processes, and all of them die with it);
  for a non-root user, a user namespace as well;
* a process-count limit: a pids cgroup when running as root (root ignores RLIMIT_NPROC), else
  RLIMIT_NPROC; counted in tasks, so threads count too;
* resource limits: address space (RLIMIT_AS), CPU time (RLIMIT_CPU), size of every file written, so
  standard output and error too (RLIMIT_FSIZE), open files, no core dumps;
* inside Python, an audit hook (see ``sandbox_runner.install_guard``) that ends the run on writes or
  reads outside its directory, sockets other than AF_UNIX pairs, name lookups, process creation,
  signals to other processes, native libraries from outside the Python installation, process or
  network functions looked up through ctypes, or changing the limits.

A run that breaks a limit or a rule scores 0, and ``RunResult.error`` says which. ``describe_isolation()``
says which layers this machine provides. Honest limits: an audit hook is not a security boundary
against a program written to escape it (Python's own documentation says so), and the program runs as
the scorer's own user, so file reads and writes outside its directory are stopped only by that hook
(root included: no mount namespace or uid change guards the file system); reads of metadata
(``os.stat``) are not audited; without ``unshare``, the network and leftover processes are also the
hook's alone; the total disk written is bounded per file (RLIMIT_FSIZE) and by the
wall-time limit, not overall; a program can forge its own results line (it shares the process that
reports them), so the scorer suits ordinary model output, not a party trying to game its score.
"""
from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RUNNER = Path(__file__).with_name("sandbox_runner.py")
CGROUP_PREFIX = "lookahead-sandbox"
_run_numbers = itertools.count()


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one run (a program and all its tests)."""
    wall_time_s: float = 30.0         # the whole run, measured by the scorer
    test_time_s: float = 5.0          # loading the program, and each test: past it the test is "timed out"
    cpu_time_s: int = 20              # CPU seconds of the run
    memory_mb: int = 1024             # address space of each process
    max_processes: int = 32           # processes and threads of the run
    max_output_bytes: int = 1_000_000  # standard output, standard error, and each file it writes
    max_open_files: int = 64


@dataclass(frozen=True)
class RunResult:
    """Outcome of one run: per-test results ("passed", "failed: <message>", "timed out"),
    passed count, score = passed / len(tests) (0 when a limit or rule was broken), and the reason."""
    results: list[str]
    passed: int
    score: float
    error: str | None


@dataclass(frozen=True)
class Isolation:
    namespace_prefix: tuple[str, ...]  # the unshare command line, empty without namespaces
    pids_cgroup_parent: Path | None    # where each run's pids cgroup is made, None without one
    process_limit_base: int            # tasks this user already runs (RLIMIT_NPROC counts them too)


def _namespace_prefix() -> tuple[str, ...]:
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    prefix = [unshare, "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    try:
        probe = subprocess.run([*prefix, sys.executable, "-I", "-c", "pass"], capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return ()
    return tuple(prefix) if probe.returncode == 0 else ()


def _pids_cgroup_parent() -> Path | None:
    """A cgroup folder (v1 pids hierarchy or v2 with pids enabled) where root can make run cgroups."""
    if os.geteuid() != 0:
        return None
    for parent in (Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")):
        probe = parent / f"{CGROUP_PREFIX}-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError:
            continue
        usable = (probe / "pids.max").exists()
        probe.rmdir()
        if usable:
            _remove_stale_cgroups(parent)
            return parent
    return None


def _remove_stale_cgroups(parent: Path) -> None:
    """Remove the run cgroups left by scorers that were killed before cleaning up (their runs ended
    by themselves at the wall-time backstop)."""
    for cgroup in parent.glob(f"{CGROUP_PREFIX}-*-*"):
        scorer_pid = cgroup.name.removeprefix(f"{CGROUP_PREFIX}-").split("-")[0]
        if scorer_pid.isdigit() and not Path(f"/proc/{scorer_pid}").exists():
            try:
                cgroup.rmdir()
            except OSError:  # still has processes: its run has not ended yet
                pass


def _user_task_count() -> int:
    """Tasks (processes and threads) of this user now; RLIMIT_NPROC counts them against the run."""
    count, uid = 0, os.getuid()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(entry.path).st_uid == uid:
                    count += len(os.listdir(os.path.join(entry.path, "task")))
            except OSError:
                continue
    return count


@functools.lru_cache(maxsize=1)
def isolation() -> Isolation:
    """Probe once which layers this machine provides."""
    if sys.platform != "linux":
        raise RuntimeError("The unit-test sandbox needs Linux (resource limits, namespaces, /proc).")
    base = 0 if os.geteuid() == 0 else _user_task_count()
    return Isolation(_namespace_prefix(), _pids_cgroup_parent(), base)


def describe_isolation(limits: SandboxLimits = SandboxLimits()) -> str:
    iso = isolation()
    namespaces = ("network and pid namespaces (unshare)" if iso.namespace_prefix
                  else "no namespaces (unshare unavailable): sockets and process creation are refused "
                       "by the Python audit hook only")
    processes = (f"pids cgroup ({limits.max_processes} tasks)" if iso.pids_cgroup_parent
                 else f"RLIMIT_NPROC ({limits.max_processes} tasks above this user's own)"
                 if os.geteuid() != 0 else "none at the OS level (root without a pids cgroup): the audit "
                                           "hook refuses process creation")
    return (f"sandbox: {namespaces}; process limit: {processes}; wall {limits.wall_time_s:g} s, "
            f"per test {limits.test_time_s:g} s, CPU {limits.cpu_time_s} s, memory {limits.memory_mb} MB, "
            f"output {limits.max_output_bytes} bytes; audit hook on files, network, processes, signals")


def _make_cgroup(parent: Path, max_tasks: int) -> Path:
    cgroup = parent / f"{CGROUP_PREFIX}-{os.getpid()}-{next(_run_numbers)}"
    cgroup.mkdir()
    (cgroup / "pids.max").write_text(str(max_tasks))
    return cgroup


def _remove_cgroup(cgroup: Path) -> None:
    """Kill whatever is left in the run's cgroup, then remove it."""
    for _ in range(200):
        for pid in (cgroup / "cgroup.procs").read_text().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            cgroup.rmdir()
            return
        except OSError:
            time.sleep(0.01)
    print(f"warning: could not remove the sandbox cgroup {cgroup}", file=sys.stderr)


def _wait_exited(pid: int, seconds: float) -> bool:
    """Wait until ``pid`` has exited, without reaping it (its process group id stays reserved)."""
    deadline = time.monotonic() + seconds
    while True:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)


def _environment(workdir: Path) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir), "TMPDIR": str(workdir),
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}  # fewer malloc arenas: threads fit RLIMIT_AS


def _read_reports(path: Path) -> dict:
    """The runner's JSON lines merged into one dict (keys: results, breach, violation, exit, signal)."""
    merged = {}
    for line in path.read_text(errors="replace").splitlines():
        try:
            merged.update(json.loads(line))
        except (json.JSONDecodeError, TypeError, ValueError):
            continue
    return merged


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _failure(reports: dict, timed_out: bool, output_bytes: int, returncode: int | None,
             stderr_tail: str, limits: SandboxLimits) -> str | None:
    """Why the run broke a limit or rule, or None when it completed within them."""
    if timed_out:
        return f"exceeded the wall-time limit of {limits.wall_time_s:g} s"
    if "violation" in reports:
        return f"sandbox violation: {reports['violation']}"
    if reports.get("breach") == "memory":
        return f"exceeded the memory limit of {limits.memory_mb} MB"
    if output_bytes >= limits.max_output_bytes:
        return f"exceeded the output limit of {limits.max_output_bytes} bytes"
    if "results" in reports:
        return None
    if "signal" in reports:
        number = reports["signal"]
        # SIGXCPU comes at the soft CPU limit, SIGKILL at the hard one (a second later) if it was ignored
        if number == signal.SIGXCPU or (number == signal.SIGKILL and reports.get("cpu_s", 0) >= limits.cpu_time_s):
            return f"exceeded the CPU-time limit of {limits.cpu_time_s} s"
        return f"killed by {_signal_name(number)}"
    if "exit" in reports:
        return f"exited with code {reports['exit']} before the tests finished"
    return f"the sandbox ended without a report (exit status {returncode}): {stderr_tail[-300:]}"


def run_program(program: str, tests: list[str], limits: SandboxLimits = SandboxLimits()) -> RunResult:
    """Execute ``program``, then each test in its namespace, inside the sandbox."""
    iso = isolation()
    with tempfile.TemporaryDirectory(prefix=f"{CGROUP_PREFIX}-", ignore_cleanup_errors=True) as run_dir:
        run_dir = Path(run_dir)
        workdir = run_dir / "work"
        workdir.mkdir(mode=0o700)
        cgroup = _make_cgroup(iso.pids_cgroup_parent, limits.max_processes) if iso.pids_cgroup_parent else None
        job = {"program": program, "tests": tests, "test_time_s": limits.test_time_s,
               "wall_time_s": limits.wall_time_s, "cpu_time_s": limits.cpu_time_s,
               "memory_mb": limits.memory_mb, "max_output_bytes": limits.max_output_bytes,
               "max_open_files": limits.max_open_files,
               "process_limit": iso.process_limit_base + limits.max_processes,
               "pids_cgroup": str(cgroup) if cgroup else None}
        argv = [*iso.namespace_prefix, sys.executable, "-I", "-B", str(RUNNER)]
        try:
            with open(run_dir / "stdout", "wb") as stdout, open(run_dir / "stderr", "wb") as stderr, \
                    open(run_dir / "result", "wb") as result:
                job["result_fd"] = result.fileno()
                (run_dir / "job.json").write_text(json.dumps(job))
                with open(run_dir / "job.json", "rb") as stdin:
                    process = subprocess.Popen(argv, cwd=workdir, env=_environment(workdir), stdin=stdin,
                                               stdout=stdout, stderr=stderr, pass_fds=(result.fileno(),),
                                               start_new_session=True)
                timed_out = not _wait_exited(process.pid, limits.wall_time_s)
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                returncode = process.wait()
        finally:
            if cgroup:
                _remove_cgroup(cgroup)
        reports = _read_reports(run_dir / "result")
        output_bytes = max((run_dir / name).stat().st_size for name in ("stdout", "stderr"))
        stderr_tail = (run_dir / "stderr").read_bytes()[-2000:].decode(errors="replace")
    error = _failure(reports, timed_out, output_bytes, returncode, stderr_tail, limits)
    if error is not None:
        reason = "timed out" if timed_out else f"failed: {error}"
        return RunResult([reason] * len(tests), 0, 0.0, error)
    results = list(reports["results"])
    passed = results.count("passed")
    return RunResult(results, passed, passed / len(tests) if tests else 0.0, None)

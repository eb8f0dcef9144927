"""Run untrusted programs against their tests inside an operating-system sandbox (bubblewrap).

``run_program(program, tests, limits)`` runs ``sandbox_runner.py`` in a fresh process tree and returns the
per-test results. The boundary is the operating system's: each run starts under bubblewrap (``bwrap``,
Debian package ``bubblewrap``) with

* new user, pid, network, IPC, UTS and cgroup namespaces: uid and gid 65534 (nobody) inside, no
  capabilities, no further user namespaces; no network (only a loopback that is down); it sees only its
  own processes; its System V IPC objects vanish with it;
* a root file system of its own, read-only: the system's shared libraries (``/usr/lib``, ``/lib`` ...),
  the Python installation it runs (base prefix and virtual environment, at their own paths), the time
  zones and ``/etc/ld.so.cache``, ``/etc/localtime``, ``/etc/mime.types``; its own ``/proc`` and a
  read-only ``/dev`` with the basic devices (so no ``/dev/shm``). Nothing else of the host is there: no
  ``/home``, ``/root`` (but the Python installation's own folder when it lives there), ``/tmp``, ``/etc``,
  the project or the data;
* one writable directory, ``/sandbox``: a private tmpfs of ``limits.disk_mb`` MB, its working directory,
  ``HOME`` and ``TMPDIR``;
* a cleared environment (PATH, HOME, TMPDIR, the locale, thread counts: no secrets); standard input empty;
* ``--die-with-parent``, ``--new-session`` and a lifeline pipe (see ``sandbox_runner``): every process of
  the run is killed when the scorer dies, ``kill -9`` included;
* a process-count limit: a pids cgroup when running as root (root ignores RLIMIT_NPROC), else
  RLIMIT_NPROC; counted in tasks, so threads count too;
* resource limits: wall time (measured by the scorer, with a backstop inside the run), address space,
  CPU time, size of every file written (standard output and error too), open files, no core dumps;
* defence in depth, inside Python: an audit hook (``sandbox_runner.install_guard``) that ends the run on
  writes or reads outside its directory, sockets, process creation and the like, so that ordinary model
  code that reaches for them scores 0 with the reason, even where the sandbox would have stopped it.

A run that breaks a limit or a rule scores 0, and ``RunResult.error`` says which. Nothing outlives a run:
the job, the results and the standard output and error are anonymous memory files (``memfd``), the
tmpfs and the namespaces vanish with the run's last process, and the run's pids cgroup is emptied and
removed. A scorer killed before it cleaned up leaves at most its cgroups (and, unconfined, its temporary
directories); both are named with its pid, and the next scorer on the machine kills what is in them and
removes them.

Without bwrap (not installed, or the kernel refuses user namespaces), ``run_program`` refuses
(``SandboxUnavailable``) unless called with ``allow_unconfined=True``: then the program runs with the
layers that need no bwrap: its own temporary directory on the host as working directory, the same
environment, limits and audit hook, and, where ``unshare`` works, network and pid namespaces. It can then
read, change and delete whatever the scorer's user can, because an audit hook is no boundary against a
program written to escape it (Python's documentation says so; the hostile corpus in the tests does it).

``describe_isolation()`` says which layers this machine provides. Honest limits: the kernel is shared
(no seccomp filter, no virtual machine), so a kernel exploit escapes; uid 65534 inside is the scorer's
own user outside, so the files bound read-only (libraries, the Python installation) are readable even
where only that user may read them; ``/proc`` shows machine-wide figures (CPU, memory, uptime); as root
without a pids cgroup no OS limit caps the number of processes (they still die with the run); the tmpfs
is memory, up to ``disk_mb`` per concurrent run; a program can forge its own results line (it shares the
process that reports them), so the scorer suits ordinary model output, not a party trying to game its
score.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

RUNNER = Path(__file__).with_name("sandbox_runner.py")
PREFIX = "lookahead-sandbox"  # of the pids cgroups and unconfined temporary directories: PREFIX-<scorer pid>-...
SANDBOX_DIR = "/sandbox"  # the writable tmpfs inside bwrap
RUNNER_IN_SANDBOX = "/opt/lookahead/sandbox_runner.py"
NOBODY = "65534"
MIB = 1024 * 1024
LIBRARY_DIRS = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/usr/libx32", "/lib", "/lib64", "/lib32", "/libx32")
READ_ONLY_EXTRAS = ("/usr/share/zoneinfo", "/etc/ld.so.cache", "/etc/localtime", "/etc/mime.types")
_run_numbers = itertools.count()
_isolation = None  # what isolation() found
_isolation_lock = threading.Lock()


class SandboxUnavailable(RuntimeError):
    """bwrap cannot run here and the caller did not allow unconfined runs."""


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
    disk_mb: int = 64                 # all files it writes together (its tmpfs; bwrap only)


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
    bwrap_prefix: tuple[str, ...]      # bwrap and its options up to the writable tmpfs; empty without bwrap
    bwrap_problem: str | None          # why bwrap cannot run here (None when it can)
    namespace_prefix: tuple[str, ...]  # the unshare command line of unconfined runs, empty without unshare
    pids_cgroup_parent: Path | None    # where each run's pids cgroup is made, None without one
    process_limit_base: int            # tasks this user already runs (RLIMIT_NPROC counts them too)


def _environment(workdir: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}  # fewer malloc arenas: threads fit RLIMIT_AS


def _python_roots() -> list[str]:
    """The folders of the running Python installation (prefixes and module paths), outermost only."""
    paths = {sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix,
             *(sysconfig.get_paths()[name] for name in ("stdlib", "platstdlib", "purelib", "platlib"))}
    roots: list[str] = []
    for path in sorted({os.path.realpath(path) for path in paths if path and os.path.isdir(path)}):
        if path != "/" and not any(path.startswith(root + os.sep) for root in roots):
            roots.append(path)
    return roots


def _bwrap_options(bwrap: str, disable_userns: bool) -> list[str]:
    """bwrap's options up to (not including) the writable tmpfs: namespaces, identity, environment and
    the read-only file system."""
    options = [bwrap, "--unshare-all", "--unshare-user", "--uid", NOBODY, "--gid", NOBODY,
               "--hostname", "sandbox", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if disable_userns:
        options.append("--disable-userns")
    options.append("--clearenv")
    for name, value in _environment(SANDBOX_DIR).items():
        options += ["--setenv", name, value]
    python = _python_roots()
    for path in LIBRARY_DIRS:
        if any(path == root or path.startswith(root + os.sep) for root in python):
            continue
        if os.path.islink(path):
            options += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            options += ["--ro-bind", path, path]
    for root in python:
        options += ["--ro-bind", root, root]
    for path in READ_ONLY_EXTRAS:
        options += ["--ro-bind-try", path, path]
    return options + ["--ro-bind", str(RUNNER), RUNNER_IN_SANDBOX, "--proc", "/proc", "--dev", "/dev",
                      "--remount-ro", "/dev"]


def _bwrap_command(prefix: tuple[str, ...], disk_mb: int) -> list[str]:
    """The full command of one run: the writable tmpfs, the read-only root, then the runner."""
    return [*prefix, "--size", str(disk_mb * MIB), "--tmpfs", SANDBOX_DIR, "--chdir", SANDBOX_DIR,
            "--remount-ro", "/", sys.executable, "-I", "-B", RUNNER_IN_SANDBOX]


def _probe_bwrap() -> tuple[tuple[str, ...], str | None]:
    """bwrap's options and None when a trivial Python starts in the sandbox, else () and why not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return (), "bwrap is not installed"
    try:
        help_text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=30).stdout
        prefix = tuple(_bwrap_options(bwrap, "--disable-userns" in help_text))
        command = [*_bwrap_command(prefix, 1)[:-3], "-I", "-c", "pass"]
        probe = subprocess.run(command, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return (), f"bwrap did not start: {exc}"
    if probe.returncode != 0:
        return (), f"bwrap failed (exit {probe.returncode}): {probe.stderr.strip()[-300:]}"
    return prefix, None


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
        probe = parent / f"{PREFIX}-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError:
            continue
        usable = (probe / "pids.max").exists()
        probe.rmdir()
        if usable:
            return parent
    return None


def _owner_is_gone(name: str) -> bool:
    """True for ``PREFIX-<pid>-...`` when no process has that pid any more."""
    pid = name.removeprefix(f"{PREFIX}-").split("-")[0]
    return pid.isdigit() and not Path(f"/proc/{pid}").exists()


def _remove_leftovers(cgroup_parent: Path | None) -> None:
    """Remove what scorers killed before cleaning up left: their runs' cgroups, with any process still
    in them, and their unconfined runs' temporary directories."""
    if cgroup_parent is not None:
        for cgroup in cgroup_parent.glob(f"{PREFIX}-*-*"):
            if _owner_is_gone(cgroup.name):
                _remove_cgroup(cgroup)
    for entry in Path(tempfile.gettempdir()).glob(f"{PREFIX}-*-*"):
        if entry.is_dir() and not entry.is_symlink() and _owner_is_gone(entry.name):
            shutil.rmtree(entry, ignore_errors=True)


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


def isolation() -> Isolation:
    """Probe once per process (the first caller probes, concurrent ones wait) which layers this machine
    provides, and remove the leftovers of killed scorers."""
    global _isolation
    with _isolation_lock:
        if _isolation is None:
            if sys.platform != "linux":
                raise RuntimeError("The unit-test sandbox needs Linux (namespaces, resource limits, /proc).")
            base = 0 if os.geteuid() == 0 else _user_task_count()
            bwrap_prefix, problem = _probe_bwrap()
            cgroup_parent = _pids_cgroup_parent()
            _remove_leftovers(cgroup_parent)
            namespaces = () if bwrap_prefix else _namespace_prefix()
            _isolation = Isolation(bwrap_prefix, problem, namespaces, cgroup_parent, base)
        return _isolation


def unconfined_warning(iso: Isolation) -> str:
    return (f"bubblewrap cannot run here ({iso.bwrap_problem}), so model code would run unconfined: it could "
            f"read, change and delete whatever this user can. Install bubblewrap (Debian/Ubuntu: apt-get "
            f"install bubblewrap; it needs user namespaces), or pass --allow_unconfined_code to run it anyway "
            f"with only resource limits, an audit hook and (where unshare works) network and pid namespaces.")


def describe_isolation(limits: SandboxLimits = SandboxLimits()) -> str:
    iso = isolation()
    if iso.bwrap_prefix:
        boundary = (f"bubblewrap (user, pid, network, IPC, UTS namespaces; uid {NOBODY}; read-only system and "
                    f"Python; a {limits.disk_mb} MB private tmpfs as its directory)")
    else:
        namespaces = "network and pid namespaces (unshare)" if iso.namespace_prefix else "no namespaces"
        boundary = f"UNCONFINED ({iso.bwrap_problem}): {namespaces}, a temporary directory on the host"
    processes = (f"pids cgroup ({limits.max_processes} tasks)" if iso.pids_cgroup_parent
                 else f"RLIMIT_NPROC ({limits.max_processes} tasks above this user's own)"
                 if os.geteuid() != 0 else "none at the OS level (root without a pids cgroup)")
    return (f"sandbox: {boundary}; process limit: {processes}; wall {limits.wall_time_s:g} s, "
            f"per test {limits.test_time_s:g} s, CPU {limits.cpu_time_s} s, memory {limits.memory_mb} MB, "
            f"output {limits.max_output_bytes} bytes; audit hook on files, network, processes, signals")


def _make_cgroup(parent: Path, max_tasks: int) -> Path:
    cgroup = parent / f"{PREFIX}-{os.getpid()}-{next(_run_numbers)}"
    cgroup.mkdir()
    (cgroup / "pids.max").write_text(str(max_tasks))
    return cgroup


def _remove_cgroup(cgroup: Path) -> None:
    """Kill whatever is left in the run's cgroup, then remove it."""
    for _ in range(200):
        try:
            pids = (cgroup / "cgroup.procs").read_text().split()
        except FileNotFoundError:  # removed meanwhile (by another scorer's clean-up)
            return
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            cgroup.rmdir()
            return
        except FileNotFoundError:
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


def _memory_file(name: str, data: bytes = b"") -> int:
    """An anonymous in-memory file (no name on any file system; freed with its last descriptor)."""
    fd = os.memfd_create(f"{PREFIX}-{name}")
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _read_reports(fd: int) -> dict:
    """The runner's JSON lines merged into one dict (keys: results, breach, violation, exit, signal)."""
    merged = {}
    for line in os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace").splitlines():
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


def _run(argv: list[str], cwd: str, env: dict[str, str], job: dict, limits: SandboxLimits,
         cgroup: Path | None) -> tuple[dict, bool, int, int, str]:
    """Start ``argv`` (joining ``cgroup`` first), wait up to the wall-time limit, kill what is left.
    Returns the runner's reports, whether it timed out, the larger output size, the exit status and
    the tail of standard error."""
    if cgroup is not None:  # the shell joins the cgroup, then becomes the sandbox: every process is in it
        argv = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(cgroup / "cgroup.procs"), *argv]
    result, stdout, stderr = _memory_file("result"), _memory_file("stdout"), _memory_file("stderr")
    lifeline, lifeline_end = os.pipe()  # the run ends when its end reads EOF: when this process is gone
    stdin = _memory_file("job", json.dumps({**job, "result_fd": result, "lifeline_fd": lifeline}).encode())
    try:
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=stdin, stdout=stdout, stderr=stderr,
                                   pass_fds=(result, lifeline), start_new_session=True)
        os.close(lifeline)
        lifeline = None
        timed_out = not _wait_exited(process.pid, limits.wall_time_s)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        returncode = process.wait()
        output_bytes = max(os.fstat(fd).st_size for fd in (stdout, stderr))
        stderr_size = os.fstat(stderr).st_size
        stderr_tail = os.pread(stderr, 2000, max(0, stderr_size - 2000)).decode(errors="replace")
        return _read_reports(result), timed_out, output_bytes, returncode, stderr_tail
    finally:
        for fd in (result, stdout, stderr, stdin, lifeline, lifeline_end):
            if fd is not None:
                os.close(fd)


def run_program(program: str, tests: list[str], limits: SandboxLimits = SandboxLimits(), *,
                allow_unconfined: bool = False, audit_hook: bool = True) -> RunResult:
    """Execute ``program``, then each test in its namespace, inside the sandbox.

    Raises ``SandboxUnavailable`` when bwrap cannot run here, unless ``allow_unconfined`` (then the run
    has only the layers described in the module docstring). ``audit_hook=False`` leaves out the
    in-process hook, so that tests can check that the operating-system layers hold on their own."""
    iso = isolation()
    if not iso.bwrap_prefix and not allow_unconfined:
        raise SandboxUnavailable(unconfined_warning(iso))
    job = {"program": program, "tests": tests, "test_time_s": limits.test_time_s,
           "wall_time_s": limits.wall_time_s, "cpu_time_s": limits.cpu_time_s,
           "memory_mb": limits.memory_mb, "max_output_bytes": limits.max_output_bytes,
           "max_open_files": limits.max_open_files, "audit_hook": audit_hook,
           "process_limit": iso.process_limit_base + limits.max_processes}
    cgroup = _make_cgroup(iso.pids_cgroup_parent, limits.max_processes) if iso.pids_cgroup_parent else None
    try:
        if iso.bwrap_prefix:
            argv = _bwrap_command(iso.bwrap_prefix, limits.disk_mb)
            outcome = _run(argv, "/", {"PATH": "/usr/bin:/bin"}, job, limits, cgroup)
        else:
            argv = [*iso.namespace_prefix, sys.executable, "-I", "-B", str(RUNNER)]
            with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-{os.getpid()}-", ignore_cleanup_errors=True) as work:
                outcome = _run(argv, work, _environment(work), job, limits, cgroup)
    finally:
        if cgroup:
            _remove_cgroup(cgroup)
    reports, timed_out, output_bytes, returncode, stderr_tail = outcome
    error = _failure(reports, timed_out, output_bytes, returncode, stderr_tail, limits)
    if error is not None:
        reason = "timed out" if timed_out else f"failed: {error}"
        return RunResult([reason] * len(tests), 0, 0.0, error)
    results = list(reports["results"])
    passed = results.count("passed")
    return RunResult(results, passed, passed / len(tests) if tests else 0.0, None)

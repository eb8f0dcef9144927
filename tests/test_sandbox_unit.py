"""The sandbox's parts one by one (``rewards.sandbox``): the bwrap and unshare command lines, the probes,
the environment, the cgroup and leftover handling, the failure reasons and the run's plumbing.

``isolation()`` probes once per process, so the sandbox tests in ``test_rewards_unit_tests.py`` see this
machine's answer only. Here every branch is taken on any Linux machine: the probes run stand-in ``bwrap``
and ``unshare`` programs put first on ``PATH``, a folder stands in for a cgroup file system (``CgroupFs``)
and another for ``/proc``, and ``run_program`` runs with a recording ``_run``. Expected values come from
the isolation policy of the module docstring, written out by hand.
"""
import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path, PosixPath

import pytest

from rewards import sandbox
from rewards.sandbox import Isolation, RunResult, SandboxLimits

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")

PREFIX = "lookahead-sandbox"
# no process ever has a pid above pid_max, so this owner is always gone
DEAD = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1 if sys.platform == "linux" else 0
ENV_INSIDE = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/sandbox", "TMPDIR": "/sandbox",
              "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
              "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}


# --- stand-ins -------------------------------------------------------------------------------------------

class CgroupFs(PosixPath):
    """A plain folder behaving as a cgroup file system does for the sandbox: ``mkdir`` makes the
    interface files (``cgroup.procs``; ``pids.max`` where the parent's ``cgroup.subtree_control`` names
    ``pids``), ``rmdir`` fails with EBUSY while a live (not zombie) process is listed in ``cgroup.procs``
    or a file ``stuck`` is there, and otherwise removes the interface files with the folder."""

    def mkdir(self, mode=0o777, parents=False, exist_ok=False):
        super().mkdir(mode, parents, exist_ok)
        PosixPath(self, "cgroup.procs").write_text("")
        control = PosixPath(self.parent, "cgroup.subtree_control")
        if control.exists() and "pids" in control.read_text().split():
            PosixPath(self, "pids.max").write_text("max")

    def rmdir(self):
        procs = PosixPath(self, "cgroup.procs")
        listed = procs.read_text().split() if procs.exists() else []
        if PosixPath(self, "stuck").exists() or any(_alive(int(pid)) for pid in listed):
            raise OSError(errno.EBUSY, "Device or resource busy", str(self))
        for name in ("cgroup.procs", "pids.max"):
            PosixPath(self, name).unlink(missing_ok=True)
        super().rmdir()


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has left its cgroup)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _stand_in(folder: Path, name: str, body: str) -> Path:
    """An executable Python program ``folder/name``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


# a stand-in bwrap: prints STATE's help text for --help; otherwise prints to both streams, writes STATE's
# stderr and exits with STATE's code. Every call appends its arguments and initial environment to LOG.
FAKE_BWRAP = """
import json, sys
state = json.load(open({state!r}))
environ = dict(entry.split("=", 1) for entry in open("/proc/self/environ").read().split("\\0") if entry)
with open({log!r}, "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "env": environ}}) + "\\n")
print("out of the stand-in")
if sys.argv[1:] == ["--help"]:
    print(state["help"])
    sys.exit(0)
sys.stderr.write(state["stderr"])
sys.exit(state["exit"])
"""


@pytest.fixture
def stand_in_tools(tmp_path, monkeypatch):
    """A folder first (and alone) on PATH holding stand-in ``bwrap`` and ``unshare``; ``set(**state)``
    sets what they do, ``calls()`` says how they were called."""
    state, log, tools = tmp_path / "state.json", tmp_path / "calls.jsonl", tmp_path / "bin"
    for name in ("bwrap", "unshare"):
        _stand_in(tools, name, FAKE_BWRAP.format(state=str(state), log=str(log)))
    monkeypatch.setenv("PATH", str(tools))

    class Tools:
        bwrap, unshare = str(tools / "bwrap"), str(tools / "unshare")

        @staticmethod
        def set(help="", stderr="", exit=0):
            state.write_text(json.dumps({"help": help, "stderr": stderr, "exit": exit}))

        @staticmethod
        def calls():
            return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    Tools.set()
    return Tools


@pytest.fixture
def run_spy(monkeypatch):
    """``subprocess.run`` recording its keyword arguments, then running as usual."""
    real, calls = subprocess.run, []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    return calls


# --- the environment and the bwrap command line ---------------------------------------------------------

def test_the_environment_is_the_documented_short_list_with_home_and_tmpdir_at_the_workdir():
    # module docstring: PATH, HOME, TMPDIR, the locale, thread counts (one each); two malloc arenas
    assert sandbox._environment("/w/x") == {**ENV_INSIDE, "HOME": "/w/x", "TMPDIR": "/w/x"}


def test_python_roots_are_the_outermost_existing_real_folders_of_the_installation(tmp_path, monkeypatch):
    root = Path(os.path.realpath(tmp_path))
    for folder in ("base/lib/python3", "venv/lib/site", "venv2"):
        (root / folder).mkdir(parents=True)
    (root / "venvlink").symlink_to(root / "venv")
    monkeypatch.setattr(sys, "base_prefix", str(root / "base"))
    monkeypatch.setattr(sys, "base_exec_prefix", "/")  # never the whole file system
    monkeypatch.setattr(sys, "prefix", str(root / "venvlink"))  # bound at its real path
    monkeypatch.setattr(sys, "exec_prefix", str(root / "missing"))  # not there: left out
    paths = {"stdlib": str(root / "base/lib/python3"), "platstdlib": "", "purelib": str(root / "venvlink/lib/site"),
             "platlib": str(root / "venv2"), "scripts": str(root / "elsewhere")}  # scripts: not a module path
    monkeypatch.setattr(sandbox.sysconfig, "get_paths", lambda: paths)
    # base/lib/python3 and venv/lib/site are inside a root; venv2 only shares a name prefix with venv
    assert sandbox._python_roots() == [str(root / "base"), str(root / "venv"), str(root / "venv2")]


def test_the_real_python_roots_hold_the_running_interpreter_and_its_standard_library():
    roots = sandbox._python_roots()
    for path in (os.path.realpath(sys.executable), os.path.realpath(os.__file__)):
        assert any(path.startswith(root + os.sep) for root in roots), (path, roots)
    assert "/" not in roots and roots == sorted(roots)


def _library_layout(tmp_path, monkeypatch):
    """Library folders: one inside the Python installation (first), a folder, a symbolic link (merged
    /usr), one missing, and the installation's own folder; returns (python root, its options)."""
    python = tmp_path / "py"
    (python / "lib").mkdir(parents=True)
    (tmp_path / "usr/lib").mkdir(parents=True)
    (tmp_path / "lib").symlink_to("usr/lib")
    monkeypatch.setattr(sandbox, "LIBRARY_DIRS", (str(python / "lib"), str(tmp_path / "usr/lib"),
                                                  str(tmp_path / "lib"), str(tmp_path / "lib64"), str(python)))
    monkeypatch.setattr(sandbox, "_python_roots", lambda: [str(python)])
    return python, ["--ro-bind", str(tmp_path / "usr/lib"), str(tmp_path / "usr/lib"),
                    "--symlink", "usr/lib", str(tmp_path / "lib"),
                    "--ro-bind", str(python), str(python)]


def test_bwrap_options_follow_the_isolation_policy(tmp_path, monkeypatch):
    _, file_system = _library_layout(tmp_path, monkeypatch)
    setenv = [word for name, value in ENV_INSIDE.items() for word in ("--setenv", name, value)]
    expected = (["/b/bwrap",
                 "--unshare-all", "--unshare-user",  # user, pid, network, IPC, UTS, cgroup namespaces
                 "--uid", "65534", "--gid", "65534", "--hostname", "sandbox",  # nobody, its own host name
                 "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                 "--disable-userns",  # no further user namespaces (where this bwrap has the option)
                 "--clearenv", *setenv]
                + file_system  # libraries (not those inside the Python installation), then Python read-only
                + ["--ro-bind-try", "/usr/share/zoneinfo", "/usr/share/zoneinfo",
                   "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
                   "--ro-bind-try", "/etc/localtime", "/etc/localtime",
                   "--ro-bind-try", "/etc/mime.types", "/etc/mime.types",
                   "--ro-bind", str(sandbox.RUNNER), "/opt/lookahead/sandbox_runner.py",
                   "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"])
    assert sandbox._bwrap_options("/b/bwrap", True) == expected
    expected.remove("--disable-userns")  # an older bwrap without the option
    assert sandbox._bwrap_options("/b/bwrap", False) == expected


def test_bwrap_command_adds_the_tmpfs_the_read_only_root_and_the_runner():
    assert sandbox._bwrap_command(("/b/bwrap", "--x"), 3) == [
        "/b/bwrap", "--x", "--size", str(3 * 1024 * 1024), "--tmpfs", "/sandbox", "--chdir", "/sandbox",
        "--remount-ro", "/", sys.executable, "-I", "-B", "/opt/lookahead/sandbox_runner.py"]


# --- the probes ------------------------------------------------------------------------------------------

def test_probe_bwrap_without_bwrap_says_it_is_not_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert sandbox._probe_bwrap() == ((), "bwrap is not installed")


@pytest.mark.parametrize("disable_userns", [True, False])
def test_probe_bwrap_starts_a_trivial_python_with_the_options_of_this_bwrap(
        stand_in_tools, run_spy, capfd, monkeypatch, disable_userns):
    monkeypatch.setenv("LOOKAHEAD_TEST_SECRET", "hunter2")
    stand_in_tools.set(help="usage: bwrap\n  --disable-userns  Disable further use of user namespaces"
                       if disable_userns else "usage: bwrap\n  --unshare-all")
    prefix, problem = sandbox._probe_bwrap()
    assert problem is None
    assert prefix[0] == stand_in_tools.bwrap and ("--disable-userns" in prefix) == disable_userns
    assert prefix == tuple(sandbox._bwrap_options(stand_in_tools.bwrap, disable_userns))
    help_call, trial = stand_in_tools.calls()
    assert help_call["argv"] == ["--help"]
    # the trial: the options, a 1 MiB tmpfs, the read-only root, then Python -I -c pass (not the runner),
    # with only PATH in bwrap's environment
    assert trial["argv"] == [*prefix[1:], "--size", "1048576", "--tmpfs", "/sandbox", "--chdir", "/sandbox",
                             "--remount-ro", "/", sys.executable, "-I", "-c", "pass"]
    assert trial["env"] == {"PATH": "/usr/bin:/bin"}
    # bounded waits (30 s for the help text, 60 s for the trial) and nothing printed by the probes
    assert [call.get("timeout") for call in run_spy] == [30, 60]
    assert capfd.readouterr() == ("", "")


def test_probe_bwrap_reports_the_exit_status_and_the_end_of_bwraps_message(stand_in_tools, capfd):
    stand_in_tools.set(stderr="x" * 50 + "y" * 300 + "  \n", exit=1)
    assert sandbox._probe_bwrap() == ((), "bwrap failed (exit 1): " + "y" * 300)
    assert capfd.readouterr() == ("", "")


def test_probe_bwrap_reports_a_bwrap_that_does_not_start_or_hangs(stand_in_tools, monkeypatch):
    Path(stand_in_tools.bwrap).write_text("#!/nonexistent/interpreter\n")
    prefix, problem = sandbox._probe_bwrap()
    assert prefix == () and problem.startswith("bwrap did not start: [Errno 2] No such file or directory")

    def hang(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(subprocess, "run", hang)
    prefix, problem = sandbox._probe_bwrap()
    assert prefix == () and problem.startswith("bwrap did not start: Command ")
    assert problem.endswith("timed out after 30 seconds")


@pytest.mark.parametrize("euid, user", [(0, []), (1000, ["--user", "--map-root-user"])], ids=["root", "user"])
def test_namespace_prefix_is_the_unshare_command_that_started_python(stand_in_tools, run_spy, capfd, monkeypatch,
                                                                    euid, user):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    expected = (stand_in_tools.unshare, *user, "--net", "--pid", "--fork", "--kill-child", "--mount-proc")
    assert sandbox._namespace_prefix() == expected
    [trial] = stand_in_tools.calls()
    assert trial["argv"] == [*expected[1:], sys.executable, "-I", "-c", "pass"]
    assert [call.get("timeout") for call in run_spy] == [30]
    assert capfd.readouterr() == ("", "")  # the trial's output is captured


def test_namespace_prefix_is_empty_without_unshare_or_when_it_fails_or_hangs(stand_in_tools, capfd, monkeypatch,
                                                                              tmp_path):
    stand_in_tools.set(stderr="unshare: unshare failed: Operation not permitted\n", exit=1)
    assert sandbox._namespace_prefix() == ()
    assert capfd.readouterr() == ("", "")
    stand_in_tools.set()

    def hang(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(subprocess, "run", hang)
    assert sandbox._namespace_prefix() == ()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert sandbox._namespace_prefix() == ()


# --- cgroups ---------------------------------------------------------------------------------------------

@pytest.fixture
def cgroup_root(tmp_path, monkeypatch):
    """``/sys/fs/cgroup`` (and what is under it) read from ``tmp_path/sys/fs/cgroup``, a ``CgroupFs``."""
    real = sandbox.Path

    def path(name, *rest):
        if str(name).startswith("/sys/fs/cgroup"):
            return CgroupFs(str(tmp_path) + str(name), *rest)
        return real(name, *rest)

    monkeypatch.setattr(sandbox, "Path", path)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    root = CgroupFs(tmp_path / "sys/fs/cgroup")
    root.mkdir(parents=True)
    return root


def test_pids_cgroup_parent_prefers_the_v1_pids_hierarchy(cgroup_root):
    (cgroup_root / "pids").mkdir()
    (cgroup_root / "pids" / "cgroup.subtree_control").write_text("pids")
    (cgroup_root / "cgroup.subtree_control").write_text("cpu memory pids")
    assert sandbox._pids_cgroup_parent() == cgroup_root / "pids"
    assert sorted(p.name for p in (cgroup_root / "pids").iterdir()) == ["cgroup.procs", "cgroup.subtree_control"]


def test_pids_cgroup_parent_takes_cgroup_v2_with_pids_enabled(cgroup_root):
    (cgroup_root / "cgroup.subtree_control").write_text("cpu memory pids")
    assert sandbox._pids_cgroup_parent() == cgroup_root
    assert sorted(p.name for p in cgroup_root.iterdir()) == ["cgroup.procs", "cgroup.subtree_control"]  # probe gone


def test_pids_cgroup_parent_is_none_without_the_pids_controller_or_for_other_users(cgroup_root, monkeypatch):
    (cgroup_root / "pids").mkdir()  # a v1 folder without the controller, and v2 without pids
    (cgroup_root / "cgroup.subtree_control").write_text("cpu memory")
    assert sandbox._pids_cgroup_parent() is None
    assert not [p for p in cgroup_root.rglob(f"{PREFIX}-*")]  # the probes are removed
    (cgroup_root / "cgroup.subtree_control").write_text("pids")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # only root may make cgroups (and needs one)
    assert sandbox._pids_cgroup_parent() is None
    assert not [p for p in cgroup_root.rglob(f"{PREFIX}-*")]


def test_pids_cgroup_parent_is_none_without_a_cgroup_file_system(cgroup_root):
    for child in cgroup_root.iterdir():
        child.unlink()
    cgroup_root.rmdir()  # no /sys/fs/cgroup: nowhere to make a cgroup
    assert sandbox._pids_cgroup_parent() is None


def _sleeper() -> subprocess.Popen:
    """A child sleeping a minute, reaped by a thread as soon as it ends."""
    child = subprocess.Popen(["sleep", "60"])
    threading.Thread(target=child.wait, daemon=True).start()
    return child


def test_remove_cgroup_kills_what_is_in_it_then_removes_it(tmp_path):
    cgroup = CgroupFs(tmp_path / f"{PREFIX}-1-0")
    cgroup.mkdir()
    child = _sleeper()
    (cgroup / "cgroup.procs").write_text(f"{DEAD}\n{child.pid}\n")  # a pid already gone is passed over
    sandbox._remove_cgroup(cgroup)
    assert not cgroup.exists()
    assert child.wait(timeout=5) == -signal.SIGKILL


def test_remove_cgroup_passes_over_a_cgroup_already_removed(tmp_path, capsys):
    sandbox._remove_cgroup(CgroupFs(tmp_path / f"{PREFIX}-1-0"))
    assert capsys.readouterr() == ("", "")


def test_remove_cgroup_gives_up_after_two_seconds_with_a_warning(tmp_path, monkeypatch, capsys):
    cgroup = CgroupFs(tmp_path / f"{PREFIX}-1-0")
    cgroup.mkdir()
    (cgroup / "stuck").write_text("")
    waits = []
    monkeypatch.setattr(time, "sleep", waits.append)
    sandbox._remove_cgroup(cgroup)
    assert sum(waits) == pytest.approx(2.0) and max(waits) <= 0.01
    assert capsys.readouterr() == ("", f"warning: could not remove the sandbox cgroup {cgroup}\n")
    assert cgroup.exists()


def test_make_cgroup_is_named_with_the_scorer_and_caps_the_tasks(tmp_path):
    parent = CgroupFs(tmp_path)
    (parent / "cgroup.subtree_control").write_text("pids")
    first, second = sandbox._make_cgroup(parent, 8), sandbox._make_cgroup(parent, 9)
    assert first.parent == second.parent == parent and first != second
    for cgroup, tasks in ((first, "8"), (second, "9")):
        assert cgroup.name.startswith(f"{PREFIX}-{os.getpid()}-") and (cgroup / "pids.max").read_text() == tasks
        sandbox._remove_cgroup(cgroup)


# --- leftovers of killed scorers -------------------------------------------------------------------------

def test_owner_is_gone_reads_the_pid_after_the_prefix():
    alive = os.getpid()
    assert sandbox._owner_is_gone(f"{PREFIX}-{DEAD}-0")
    assert sandbox._owner_is_gone(f"{PREFIX}-{DEAD}-abc_tmp12")  # an unconfined run's temporary directory
    assert not sandbox._owner_is_gone(f"{PREFIX}-{alive}-{DEAD}")  # the run number is not the owner
    assert not sandbox._owner_is_gone(f"{PREFIX}-probe-{DEAD}")  # no pid: not a run's


@pytest.fixture
def leftovers(tmp_path, monkeypatch):
    """A cgroup parent (``CgroupFs``) and a temporary folder, each with leftovers of a dead scorer and
    the folders of a live one; returns (parent, temporary folder)."""
    parent, temp = CgroupFs(tmp_path / "cgroups"), tmp_path / "tmp"
    parent.mkdir()
    temp.mkdir()
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(temp))
    for name in (f"{PREFIX}-{DEAD}-0", f"{PREFIX}-{DEAD}-1", f"{PREFIX}-{os.getpid()}-0", f"other-{DEAD}-0"):
        (parent / name).mkdir()
    for name in (f"{PREFIX}-{DEAD}-abc", f"{PREFIX}-{os.getpid()}-def", f"other-{DEAD}-0"):
        (temp / name / "sub").mkdir(parents=True)
        (temp / name / "sub" / "f").write_text("x")
    (tmp_path / "target").mkdir()
    (temp / f"{PREFIX}-{DEAD}-link").symlink_to(tmp_path / "target")  # followed by nobody
    (temp / f"{PREFIX}-{DEAD}-file").write_text("x")
    return parent, temp


def test_remove_leftovers_removes_what_dead_scorers_left_and_nothing_else(leftovers, tmp_path):
    parent, temp = leftovers
    child = _sleeper()
    (parent / f"{PREFIX}-{DEAD}-0" / "cgroup.procs").write_text(f"{child.pid}\n")
    sandbox._remove_leftovers(parent)
    assert child.wait(timeout=5) == -signal.SIGKILL
    assert sorted(p.name for p in parent.iterdir() if p.is_dir()) == sorted([f"{PREFIX}-{os.getpid()}-0",
                                                                            f"other-{DEAD}-0"])
    assert sorted(p.name for p in temp.iterdir()) == sorted(
        [f"{PREFIX}-{os.getpid()}-def", f"other-{DEAD}-0", f"{PREFIX}-{DEAD}-link", f"{PREFIX}-{DEAD}-file"])
    assert (tmp_path / "target").is_dir()


def test_remove_leftovers_without_cgroups_cleans_the_temporary_folder(leftovers):
    parent, temp = leftovers
    sandbox._remove_leftovers(None)
    assert len([p for p in parent.iterdir() if p.is_dir()]) == 4  # untouched
    assert not (temp / f"{PREFIX}-{DEAD}-abc").exists() and (temp / f"{PREFIX}-{os.getpid()}-def").exists()


def test_remove_leftovers_passes_over_a_folder_another_scorer_removes_first(leftovers, monkeypatch):
    parent, temp = leftovers
    real = sandbox.shutil.rmtree

    def racing(path, *args, **kwargs):  # the other scorer's clean-up gets there first
        real(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(sandbox.shutil, "rmtree", racing)
    sandbox._remove_leftovers(parent)
    assert not (temp / f"{PREFIX}-{DEAD}-abc").exists()


@pytest.mark.skipif(not (sys.platform == "linux" and sandbox.isolation().pids_cgroup_parent),
                    reason="no pids cgroup here (not root, or none mounted)")
def test_remove_leftovers_kills_and_removes_a_real_cgroup_of_a_dead_scorer():
    parent = sandbox.isolation().pids_cgroup_parent
    dead, mine = parent / f"{PREFIX}-{DEAD}-0", parent / f"{PREFIX}-{os.getpid()}-{DEAD}"
    dead.mkdir()
    mine.mkdir()
    try:
        child = subprocess.Popen(["/bin/sh", "-c", 'echo $$ > "$0" && exec sleep 60', str(dead / "cgroup.procs")])
        deadline = time.monotonic() + 10
        while not (dead / "cgroup.procs").read_text().split() and time.monotonic() < deadline:
            time.sleep(0.01)
        threading.Thread(target=child.wait, daemon=True).start()
        sandbox._remove_leftovers(parent)
        assert child.wait(timeout=5) == -signal.SIGKILL
        assert not dead.exists() and mine.exists()
    finally:
        for cgroup in (dead, mine):
            if cgroup.exists():
                sandbox._remove_cgroup(cgroup)


def test_user_task_count_counts_the_threads_of_this_users_processes(tmp_path, monkeypatch):
    proc = tmp_path / "proc"
    for pid, tasks in (("100", 3), ("150", None), ("200", 2), ("self", 5)):  # 150 ended meanwhile (no task/)
        (proc / pid).mkdir(parents=True)
        for task in range(tasks or 0):
            (proc / pid / "task" / str(task)).mkdir(parents=True)
    (proc / "uptime").write_text("1 1")
    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: sorted(real(proc if path == "/proc" else path),
                                                           key=lambda entry: entry.name))
    owner = os.stat(proc).st_uid
    monkeypatch.setattr(os, "getuid", lambda: owner)
    assert sandbox._user_task_count() == 3 + 2
    monkeypatch.setattr(os, "getuid", lambda: owner + 1)
    assert sandbox._user_task_count() == 0


def test_the_real_user_task_count_includes_this_process_threads():
    assert sandbox._user_task_count() >= len(os.listdir("/proc/self/task")) >= 1


# --- isolation() ----------------------------------------------------------------------------------------

@pytest.fixture
def probes(monkeypatch):
    """isolation() not yet probed, with recording stand-ins for the probes; returns the calls."""
    calls = []
    monkeypatch.setattr(sandbox, "_isolation", None)
    monkeypatch.setattr(sandbox, "_user_task_count", lambda: calls.append("tasks") or 41)
    monkeypatch.setattr(sandbox, "_pids_cgroup_parent", lambda: calls.append("cgroup") or Path("/cg"))
    monkeypatch.setattr(sandbox, "_remove_leftovers", lambda parent: calls.append(("leftovers", parent)))
    monkeypatch.setattr(sandbox, "_namespace_prefix", lambda: calls.append("unshare") or ("unshare", "--net"))
    return calls


def test_isolation_probes_once_and_removes_leftovers(probes, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(sandbox, "_probe_bwrap", lambda: (("bwrap", "--x"), None))
    first = sandbox.isolation()
    # root: RLIMIT_NPROC is not used, so no task count; with bwrap, no unshare probe
    assert first == Isolation(("bwrap", "--x"), None, (), Path("/cg"), 0)
    assert probes == ["cgroup", ("leftovers", Path("/cg"))]
    assert sandbox.isolation() is first and len(probes) == 2  # cached


def test_isolation_without_bwrap_probes_unshare_and_counts_this_users_tasks(probes, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sandbox, "_probe_bwrap", lambda: ((), "bwrap is not installed"))
    assert sandbox.isolation() == Isolation((), "bwrap is not installed", ("unshare", "--net"), Path("/cg"), 41)
    assert probes == ["tasks", "cgroup", ("leftovers", Path("/cg")), "unshare"]


def test_isolation_refuses_other_systems(probes, monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(RuntimeError) as raised:
        sandbox.isolation()
    assert str(raised.value) == "The unit-test sandbox needs Linux (namespaces, resource limits, /proc)."
    assert probes == []


# --- describe_isolation ----------------------------------------------------------------------------------

LIMITS_TEXT = "wall 30 s, per test 5 s, CPU 20 s, memory 1024 MB, output 1000000 bytes; audit hook on files, " \
              "network, processes, signals"


@pytest.mark.parametrize("iso, euid, text", [
    (Isolation(("bwrap",), None, (), Path("/cg"), 0), 0,
     "sandbox: bubblewrap (user, pid, network, IPC, UTS namespaces; uid 65534; read-only system and Python; "
     "a 64 MB private tmpfs as its directory); process limit: pids cgroup (32 tasks); "),
    (Isolation((), "bwrap is not installed", ("unshare",), None, 7), 1000,
     "sandbox: UNCONFINED (bwrap is not installed): network and pid namespaces (unshare), a temporary "
     "directory on the host; process limit: RLIMIT_NPROC (32 tasks above this user's own); "),
    (Isolation((), "bwrap failed (exit 1): x", (), None, 0), 0,
     "sandbox: UNCONFINED (bwrap failed (exit 1): x): no namespaces, a temporary directory on the host; "
     "process limit: none at the OS level (root without a pids cgroup); "),
], ids=["bwrap", "unconfined_user", "unconfined_root"])
def test_describe_isolation_names_each_layer(monkeypatch, iso, euid, text):
    monkeypatch.setattr(sandbox, "_isolation", iso)
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    assert sandbox.describe_isolation() == text + LIMITS_TEXT


# --- run_program's assembly (a recording _run) -------------------------------------------------------------

@pytest.fixture
def recorded_run(monkeypatch):
    """``run_program`` with a ``_run`` that records its arguments (and the cgroup's pids.max and whether
    the working directory exists) and returns ``outcome[0]``."""
    calls, outcome = [], [({"results": []}, False, 0, 0, "")]

    def fake_run(argv, cwd, env, job, limits, cgroup):
        calls.append({"argv": argv, "cwd": cwd, "env": env, "job": job, "limits": limits, "cgroup": cgroup,
                      "pids.max": (cgroup / "pids.max").read_text() if cgroup else None,
                      "cwd exists": os.path.isdir(cwd)})
        return outcome[0]

    monkeypatch.setattr(sandbox, "_run", fake_run)
    return calls, outcome


LIMITS = SandboxLimits(wall_time_s=6, test_time_s=2, cpu_time_s=3, memory_mb=512, max_processes=16,
                       max_output_bytes=1000, max_open_files=20, disk_mb=5)


def test_run_program_under_bwrap_runs_the_runner_in_the_tmpfs_with_only_path(recorded_run, monkeypatch):
    calls, outcome = recorded_run
    monkeypatch.setattr(sandbox, "_isolation", Isolation(("/b/bwrap", "--x"), None, (), None, 4))
    outcome[0] = ({"results": ["passed", "failed: x", "passed"]}, False, 10, 0, "")
    run = sandbox.run_program("x = 1", ["a", "b", "c"], LIMITS)
    assert run == RunResult(["passed", "failed: x", "passed"], 2, 2 / 3, None)
    [call] = calls
    assert call["argv"] == ["/b/bwrap", "--x", "--size", str(5 * 1024 * 1024), "--tmpfs", "/sandbox",
                            "--chdir", "/sandbox", "--remount-ro", "/", sys.executable, "-I", "-B",
                            "/opt/lookahead/sandbox_runner.py"]
    assert (call["cwd"], call["env"], call["cgroup"], call["limits"]) == ("/", {"PATH": "/usr/bin:/bin"}, None, LIMITS)
    assert call["job"] == {"program": "x = 1", "tests": ["a", "b", "c"], "test_time_s": 2, "wall_time_s": 6,
                           "cpu_time_s": 3, "memory_mb": 512, "max_output_bytes": 1000, "max_open_files": 20,
                           "audit_hook": True, "process_limit": 4 + 16}


def test_run_program_unconfined_runs_in_a_temporary_directory_and_a_pids_cgroup(recorded_run, monkeypatch, tmp_path):
    calls, _ = recorded_run
    parent = CgroupFs(tmp_path / "cgroups")
    parent.mkdir()
    (parent / "cgroup.subtree_control").write_text("pids")
    monkeypatch.setattr(sandbox, "_isolation", Isolation((), "no bwrap", ("/u/unshare", "--net"), parent, 0))
    run = sandbox.run_program("x = 1", [], LIMITS, allow_unconfined=True, audit_hook=False)
    assert run == RunResult([], 0, 0.0, None)  # no tests: score 0
    [call] = calls
    work = call["cwd"]
    assert call["argv"] == ["/u/unshare", "--net", sys.executable, "-I", "-B", str(sandbox.RUNNER)]
    assert os.path.dirname(work) == tempfile.gettempdir() and call["cwd exists"] and not os.path.exists(work)
    assert os.path.basename(work).startswith(f"{PREFIX}-{os.getpid()}-")
    assert call["env"] == {**ENV_INSIDE, "HOME": work, "TMPDIR": work}
    assert call["cgroup"].parent == parent and call["pids.max"] == "16" and not call["cgroup"].exists()
    assert call["job"]["audit_hook"] is False


def test_run_program_survives_a_program_that_deletes_its_own_directory(recorded_run, monkeypatch):
    calls, _ = recorded_run
    monkeypatch.setattr(sandbox, "_isolation", Isolation((), "no bwrap", (), None, 0))
    real = sandbox._run

    def deleting(argv, cwd, *rest):
        os.rmdir(cwd)
        return real(argv, cwd, *rest)

    monkeypatch.setattr(sandbox, "_run", deleting)
    assert sandbox.run_program("x = 1", [], LIMITS, allow_unconfined=True).error is None
    assert not os.path.exists(calls[0]["cwd"])


def test_run_program_survives_a_directory_that_cannot_be_removed(recorded_run, monkeypatch):
    # e.g. a process that left the run's group still writing there, or a mount point: EBUSY
    calls, _ = recorded_run
    monkeypatch.setattr(sandbox, "_isolation", Isolation((), "no bwrap", (), None, 0))
    real_rmdir = os.rmdir

    def busy(path, *args, **kwargs):
        if calls and os.fspath(path) == calls[0]["cwd"]:
            raise OSError(errno.EBUSY, "Device or resource busy", path)
        return real_rmdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", busy)
    assert sandbox.run_program("x = 1", [], LIMITS, allow_unconfined=True).error is None
    monkeypatch.undo()
    assert os.path.isdir(calls[0]["cwd"])  # left for the next scorer's clean-up (named with this pid)
    os.rmdir(calls[0]["cwd"])


@pytest.mark.parametrize("outcome, results, error", [
    (({}, True, 0, -9, ""), ["timed out"] * 2, "exceeded the wall-time limit of 6 s"),
    (({"results": ["passed", "passed"], "violation": "sockets"}, False, 0, 0, ""),
     ["failed: sandbox violation: sockets"] * 2, "sandbox violation: sockets"),
    (({}, False, 0, 1, "Traceback: boom"), ["failed: the sandbox ended without a report (exit status 1): "
                                          "Traceback: boom"] * 2,
     "the sandbox ended without a report (exit status 1): Traceback: boom"),
], ids=["timed_out", "violation", "no_report"])
def test_run_program_scores_zero_with_the_reason_on_every_test(recorded_run, monkeypatch, outcome, results, error):
    _, recorded = recorded_run
    monkeypatch.setattr(sandbox, "_isolation", Isolation(("/b/bwrap",), None, (), None, 0))
    recorded[0] = outcome
    assert sandbox.run_program("x = 1", ["a", "b"], LIMITS) == RunResult(results, 0, 0.0, error)


# --- failure reasons, reports, signals -------------------------------------------------------------------

@pytest.mark.parametrize("reports, timed_out, output_bytes, returncode, stderr_tail, expected", [
    ({"results": []}, True, 0, -9, "", "exceeded the wall-time limit of 6 s"),
    ({"results": [], "violation": "sockets"}, False, 0, 0, "", "sandbox violation: sockets"),
    ({"results": [], "breach": "memory"}, False, 0, 0, "", "exceeded the memory limit of 512 MB"),
    ({"results": []}, False, 1000, 0, "", "exceeded the output limit of 1000 bytes"),
    ({"results": []}, False, 999, 0, "", None),
    ({"signal": int(signal.SIGXCPU)}, False, 0, 0, "", "exceeded the CPU-time limit of 3 s"),
    # SIGKILL at the hard CPU limit: the supervisor's cpu_s reached the limit
    ({"signal": int(signal.SIGKILL), "cpu_s": 3.0}, False, 0, 0, "", "exceeded the CPU-time limit of 3 s"),
    ({"signal": int(signal.SIGKILL), "cpu_s": 2.9}, False, 0, 0, "", "killed by SIGKILL"),
    ({"signal": int(signal.SIGSEGV)}, False, 0, 0, "", "killed by SIGSEGV"),
    ({"exit": 3}, False, 0, 0, "", "exited with code 3 before the tests finished"),
    ({}, False, 0, 1, "a" * 100 + "b" * 300, "the sandbox ended without a report (exit status 1): " + "b" * 300),
])
def test_failure_names_the_first_broken_limit_or_rule(reports, timed_out, output_bytes, returncode, stderr_tail,
                                                       expected):
    assert sandbox._failure(reports, timed_out, output_bytes, returncode, stderr_tail, LIMITS) == expected


def test_a_sigkill_without_a_cpu_figure_is_not_a_cpu_limit():
    limits = SandboxLimits(cpu_time_s=1)
    assert sandbox._failure({"signal": int(signal.SIGKILL)}, False, 0, 0, "", limits) == "killed by SIGKILL"


def test_signal_name_is_the_symbolic_name_or_the_number():
    assert (sandbox._signal_name(9), sandbox._signal_name(24), sandbox._signal_name(200)) == (
        "SIGKILL", "SIGXCPU", "signal 200")


def test_read_reports_merges_json_lines_and_skips_the_rest():
    data = b'{"results": ["passed"]}\n\xff{"exit": 1}\n[1, 2]\n3\nnot json\n{"exit": 0, "signal": 9}\n'
    fd = sandbox._memory_file("r", data)
    try:
        assert sandbox._read_reports(fd) == {"results": ["passed"], "exit": 0, "signal": 9}
    finally:
        os.close(fd)


def test_memory_file_is_anonymous_empty_by_default_and_rewound():
    empty, full = sandbox._memory_file("a"), sandbox._memory_file("b", b"job")
    try:
        assert os.fstat(empty).st_size == 0
        assert os.read(full, 10) == b"job"  # read from the start
        assert os.readlink(f"/proc/self/fd/{full}") == f"/memfd:{PREFIX}-b (deleted)"
    finally:
        os.close(empty)
        os.close(full)


# --- _run and _wait_exited with a real child ---------------------------------------------------------------

CHILD = """
import json, os, sys
job = json.loads(sys.stdin.read())
links = {name: os.readlink(f"/proc/self/fd/{fd}")
         for name, fd in (("job", 0), ("stdout", 1), ("stderr", 2), ("result", job["result_fd"]))}
environ = dict(entry.split("=", 1) for entry in open("/proc/self/environ").read().split("\\0") if entry)
report = {"links": links, "env": environ, "cwd": os.getcwd(), "own_session": os.getsid(0) == os.getpid(),
          "pid": os.getpid(), "job": {k: v for k, v in job.items() if not k.endswith("_fd")}}
os.write(job["result_fd"], (json.dumps(report) + "\\n").encode())
sys.stdout.write("o" * 5000)
sys.stdout.flush()
sys.stderr.buffer.write(b"a" * 1000 + b"\\xff" + b"b" * 1999)
sys.stderr.flush()
sys.exit(3)
"""


def test_run_passes_the_job_on_memory_files_and_returns_the_reports_size_status_and_stderr_tail(
        tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("LOOKAHEAD_TEST_SECRET", "hunter2")
    cgroup = CgroupFs(tmp_path / "cg")
    cgroup.mkdir()
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "MARK": "1"}
    reports, timed_out, output_bytes, returncode, tail = sandbox._run(
        [sys.executable, "-c", CHILD], str(tmp_path), env, {"tests": ["t"]}, SandboxLimits(wall_time_s=30), cgroup)
    assert (timed_out, output_bytes, returncode) == (False, 5000, 3)  # the larger of the two outputs
    assert tail == "\ufffd" + "b" * 1999  # the last 2000 bytes, undecodable ones replaced
    assert reports["links"] == {name: f"/memfd:{PREFIX}-{name} (deleted)" for name in ("job", "stdout", "stderr", "result")}
    # exactly the environment given (and PWD, which the shell that joins the cgroup sets)
    assert reports["env"] == {**env, "PWD": os.path.realpath(tmp_path)}
    assert reports["cwd"] == os.path.realpath(tmp_path) and reports["own_session"]
    assert reports["job"] == {"tests": ["t"]}
    assert (cgroup / "cgroup.procs").read_text().split() == [str(reports["pid"])]  # joined before it started
    assert capfd.readouterr() == ("", "")


def test_run_past_the_wall_time_kills_the_whole_process_group(tmp_path):
    program = ("import json, os, subprocess, sys, time\njob = json.loads(sys.stdin.read())\n"
               "sleeper = subprocess.Popen(['sleep', '60'])\n"
               "os.write(job['result_fd'], (json.dumps({'grandchild': sleeper.pid}) + '\\n').encode())\n"
               "sys.stderr.write('xyz')\nsys.stderr.flush()\ntime.sleep(60)\n")
    started = time.monotonic()
    reports, timed_out, output_bytes, returncode, tail = sandbox._run(
        [sys.executable, "-c", program], str(tmp_path), {"PATH": "/usr/bin:/bin"}, {},
        SandboxLimits(wall_time_s=1.5), None)
    assert (timed_out, output_bytes, returncode, tail) == (True, 3, -signal.SIGKILL, "xyz")
    assert time.monotonic() - started < 30
    deadline = time.monotonic() + 10  # the grandchild was killed with its group (then reaped by init)
    while _alive(reports["grandchild"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(reports["grandchild"])


def test_wait_exited_waits_without_reaping(monkeypatch):
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert sandbox._wait_exited(child.pid, 0.05) is False
        child.kill()
        assert sandbox._wait_exited(child.pid, 10) is True
        assert sandbox._wait_exited(child.pid, 0) is True  # still there to wait for
    finally:
        child.kill()
    assert child.wait() == -signal.SIGKILL  # not reaped by _wait_exited: its status is still there


def test_wait_exited_with_no_time_left_does_not_wait(monkeypatch):
    child = subprocess.Popen(["sleep", "60"])
    clock, waits = [100.0], []
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])

    def sleep(seconds):
        waits.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(time, "sleep", sleep)
    try:
        assert sandbox._wait_exited(child.pid, 0) is False and waits == []
        assert sandbox._wait_exited(child.pid, 0.02) is False and sum(waits) >= 0.02  # waited up to the limit
    finally:
        child.kill()
        child.wait()


def test_wait_exited_notices_an_exit_within_ten_milliseconds(monkeypatch):
    # a fake clock: the child is killed (and has exited) once 0.1 s have passed on it
    child = subprocess.Popen(["sleep", "60"])
    clock, killed = [100.0], []
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])

    def sleep(seconds):
        clock[0] += seconds
        if clock[0] >= 100.1 and not killed:
            child.kill()
            os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
            killed.append(clock[0])

    monkeypatch.setattr(time, "sleep", sleep)
    try:
        assert sandbox._wait_exited(child.pid, 5) is True
        assert clock[0] <= 100.1 + 0.01
    finally:
        child.kill()
        child.wait()

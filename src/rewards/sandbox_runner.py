"""Runs one program and its tests inside the sandbox; started by ``rewards.sandbox``, never imported.

Started as ``python -I -B sandbox_runner.py`` (under bubblewrap, or unconfined where the user allowed
it) with the job (JSON) on standard input, its writable directory as working directory, a scrubbed
environment, and a results file open on ``result_fd``. It is self-contained (no project imports: ``-I``
leaves ``src`` off ``sys.path``, and under bubblewrap nothing of the project but this file is visible).

Two processes:

* the supervisor (this process) sets the resource limits, forks the worker, waits for it and writes how
  it ended (``{"exit": code}`` or ``{"signal": number}``). It ends the run as soon as the scorer is gone
  (``lifeline_fd``, the read end of a pipe only the scorer writes to, reads EOF: this holds even when the
  scorer was killed before bubblewrap could tie the run to it), and a backstop alarm ends it after the
  wall-time limit.
* the worker installs the guard (an audit hook, see ``install_guard``; defence in depth, left out when
  the job says ``"audit_hook": false``), executes the program as module ``solution`` (so an
  ``if __name__ == "__main__":`` block does not run, as in human-eval style harnesses), then each test in
  the program's namespace with a per-test time limit, and writes ``{"results": [...], "breach": null |
  "memory"}``. A guard violation writes ``{"violation": reason}`` and ends the worker at once.

Every line written to ``result_fd`` is one complete JSON object.
"""
import builtins
import json
import os
import resource
import select
import signal
import sys

MIB = 1024 * 1024
VIOLATION_EXIT_CODE = 86
PROGRAM_MODULE = "solution"  # the program's __name__: not "__main__"


class TestTimeout(BaseException):
    """Raised by the per-test alarm; a BaseException so that ``except Exception`` in a program does not
    swallow it (a program that catches BaseException still meets the run's wall and CPU limits)."""


def write_line(fd, obj):
    data = (json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def set_limits(job):
    """Soft and hard limits equal (the CPU hard limit one second later, so SIGXCPU comes first)."""
    memory = job["memory_mb"] * MIB
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (job["cpu_time_s"], job["cpu_time_s"] + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (job["max_output_bytes"], job["max_output_bytes"]))
    resource.setrlimit(resource.RLIMIT_NOFILE, (job["max_open_files"], job["max_open_files"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (job["process_limit"], job["process_limit"]))


def readable_roots(workdir):
    """Folders a program may read: its own directory and the Python installation it imports from."""
    roots = {workdir}
    for path in [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, *sys.path]:
        if path and os.path.isdir(path):
            roots.add(os.path.realpath(path))
    return tuple(sorted(roots))


READABLE_FILES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/etc/localtime", "/etc/timezone",
                  "/etc/mime.types", "/etc/os-release", "/usr/lib/os-release", "/proc/cpuinfo", "/proc/meminfo")
READABLE_TREES = ("/usr/share/zoneinfo",)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
REFUSED_EVENTS = {
    "os.fork": "starts a process (fork)", "os.forkpty": "starts a process (forkpty)",
    "os.exec": "executes a program", "os.posix_spawn": "starts a process (posix_spawn)",
    "os.spawn": "starts a process (spawn)", "os.system": "runs a shell command",
    "subprocess.Popen": "starts a subprocess", "os.startfile": "starts a program",
    "os.killpg": "signals a process group", "resource.setrlimit": "changes its resource limits",
    "resource.prlimit": "changes resource limits", "os.symlink": "creates a symbolic link",
    "socket.connect": "uses the network (connect)", "socket.bind": "uses the network (bind)",
    "socket.sendto": "uses the network (sendto)", "socket.sendmsg": "uses the network (sendmsg)",
    "socket.getaddrinfo": "looks up a host name", "socket.gethostbyname": "looks up a host name",
    "socket.gethostbyname_ex": "looks up a host name", "socket.gethostbyaddr": "looks up a host address",
    "socket.getnameinfo": "looks up a host address", "socket.sethostname": "changes the host name"}
# C functions a program may not look up through ctypes: processes, signals, network, limits, directory
# changes, and file-system calls the hook would not see (the libraries it may load, inside the Python
# installation, link the C library, and ctypes.pythonapi is the whole process, so any handle reaches these)
DENIED_SYMBOLS = {"fork", "_Fork", "vfork", "clone", "clone3", "execve", "execveat", "execv", "execvp", "execvpe",
                  "execl", "execlp", "execle", "fexecve", "system", "popen", "posix_spawn", "posix_spawnp", "daemon",
                  "kill", "killpg", "tgkill", "tkill", "raise", "pidfd_open", "pidfd_send_signal", "sigqueue",
                  "socket", "socketpair", "connect", "bind", "sendto", "sendmsg", "setrlimit", "prlimit",
                  "prlimit64", "syscall", "unshare", "setns", "ptrace", "chdir", "fchdir", "chroot",
                  "open", "open64", "openat", "openat64", "fopen", "fopen64", "freopen", "creat", "creat64",
                  "unlink", "unlinkat", "remove", "rename", "renameat", "renameat2", "symlink", "symlinkat",
                  "link", "linkat", "mkdir", "mkdirat", "rmdir", "chmod", "fchmodat", "chown", "lchown",
                  "fchownat", "truncate", "truncate64", "mkfifo", "mkfifoat", "mknod", "mknodat", "utime",
                  "utimes", "utimensat", "shmget", "shm_open", "mq_open", "opendir", "scandir", "nftw"}
# introspection that reaches the hook's own objects (to replace what it calls), and modules whose fresh
# import undoes a replacement made at start-up
REFUSED_INTROSPECTION = {"gc.get_objects", "gc.get_referrers", "gc.get_referents"}
# (and modules that open files or shared memory in C, unaudited)
REFUSED_IMPORTS = {"_posixsubprocess", "_posixshmem", "readline"}
# os.* events whose first argument (and, for the two-path ones, the second) is a path the program changes
WRITE_EVENTS = {"os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.chmod": 1, "os.chown": 1, "os.utime": 1,
                "os.truncate": 1, "os.mkfifo": 1, "os.mknod": 1, "os.setxattr": 1, "os.removexattr": 1,
                "os.chflags": 1, "os.lchflags": 1, "os.rename": 2, "os.link": 2}
READ_EVENTS = {"os.listdir", "os.scandir"}


def install_guard(workdir, result_fd):
    """Audit hook: any event outside the rules below writes a violation and ends the worker at once.

    Allowed: reading inside ``workdir``, the Python installation, its own /proc entry and a few system
    files (time zones, MIME types); writing inside
    ``workdir``; AF_UNIX socket pairs (asyncio needs them); signals to itself. Refused: writes or reads
    elsewhere, opening a directory outside ``workdir``, leaving ``workdir`` with chdir, symbolic links,
    network sockets and name lookups, creating processes, signalling other processes, loading native
    libraries from outside the Python installation (or by a bare name) or looking up process, network,
    file-system or audit functions through ctypes, changing resource limits, ``gc`` introspection, a
    fresh import of ``_posixsubprocess``, importing ``_posixshmem`` or ``readline`` (they open files in C),
    sqlite databases outside ``workdir``. Functions the hook needs are bound now, so a program that
    replaces ``os.path.realpath``, ``isinstance`` and the like does not change the checks, though it can
    still change what they call. An audit hook is a tripwire, not a security boundary: the
    operating-system layers (bubblewrap, namespaces, cgroup, limits) are.
    """
    # plus its own /proc entry (torch reads maps) and this file (warnings show the line that called exec)
    roots = readable_roots(workdir) + (f"/proc/{os.getpid()}", os.path.realpath(__file__))
    realpath, join, isdir, fsdecode = os.path.realpath, os.path.join, os.path.isdir, os.fsdecode
    exit_now, own_pid, dumps, write = os._exit, os.getpid(), json.dumps, os.write
    is_instance, to_str = isinstance, str  # bound now: a program may replace the builtins
    af_unix = 1

    def inside(path, folder):
        return path == folder or path.startswith(folder + os.sep)

    def resolved(path):
        if is_instance(path, int):
            return None
        return realpath(join(workdir, fsdecode(path)))

    def refuse(reason):
        data = (dumps({"violation": reason}) + "\n").encode()
        while data:
            data = data[write(result_fd, data):]
        exit_now(VIOLATION_EXIT_CODE)

    def check_write(path):
        target = resolved(path)
        if target is not None and not inside(target, workdir) and target != "/dev/null":
            refuse(f"writes outside its directory: {target}")

    def check_read(path, opening):
        target = resolved(path)
        if target is None or inside(target, workdir):
            return
        if opening and isdir(target):  # a directory descriptor would let relative paths escape
            refuse(f"opens a directory outside its directory: {target}")
        if target in READABLE_FILES or any(inside(target, root) for root in roots + READABLE_TREES):
            return
        refuse(f"reads outside its directory: {target}")

    def hook(event, args):
        if event == "open":
            path, _mode, flags = args
            if is_instance(flags, int) and flags & WRITE_FLAGS:
                check_write(path)
            else:
                check_read(path, opening=True)
        elif event in WRITE_EVENTS:
            for path in args[:WRITE_EVENTS[event]]:
                check_write(path)
        elif event in READ_EVENTS:
            if args and args[0] is not None:
                check_read(args[0], opening=False)
        elif event == "os.chdir":
            if resolved(args[0]) != workdir:
                refuse(f"changes directory to {args[0]}")
        elif event == "socket.__new__":
            if args[1] != af_unix:
                refuse(f"opens a network socket (family {int(args[1])})")
        elif event == "os.kill":
            if args[0] != own_pid:
                refuse(f"signals another process (pid {args[0]})")
        elif event == "ctypes.dlopen":
            # a bare name ("libc.so.6") is found by the dynamic loader in the system's folders
            name = fsdecode(args[0]) if args[0] is not None else None
            library = resolved(name) if name is not None and os.sep in name else None
            if library is None or not any(inside(library, root) for root in roots):
                refuse(f"loads a native library outside the Python installation: {args[0]}")
        elif event in ("ctypes.dlsym", "ctypes.dlsym/handle"):
            name = to_str(args[1])
            if name in DENIED_SYMBOLS or "audit" in name.lower():
                refuse(f"looks up the native function {name}")
        elif event == "sqlite3.connect":  # opens its file in C
            database = fsdecode(args[0])
            if database not in ("", ":memory:") and not database.startswith("file::memory:"):
                check_write(database.removeprefix("file:").split("?")[0])
        elif event in REFUSED_INTROSPECTION:
            refuse(f"inspects the interpreter's objects ({event})")
        elif event == "import" and args[0] in REFUSED_IMPORTS:
            refuse(f"imports {args[0]}")
        elif event in REFUSED_EVENTS:
            refuse(REFUSED_EVENTS[event])

    sys.addaudithook(hook)


def disable_unaudited_process_creation(result_fd):
    """``_posixsubprocess.fork_exec`` starts processes without an audit event: replace it."""
    import _posixsubprocess

    def fork_exec(*args, **kwargs):
        write_line(result_fd, {"violation": "starts a subprocess"})
        os._exit(VIOLATION_EXIT_CODE)

    _posixsubprocess.fork_exec = fork_exec


def start_timer(seconds):
    def on_alarm(signum, frame):
        raise TestTimeout()

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def run_code(code, namespace, seconds):
    """"passed", "failed: <message>" or "timed out"; a MemoryError propagates (it breaks the run)."""
    try:
        try:
            start_timer(seconds)
            exec(compile(code, "<string>", "exec"), namespace)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except MemoryError:
        raise
    except BaseException as exc:
        return "timed out" if isinstance(exc, TestTimeout) else f"failed: {exc}"
    return "passed"


def run_tests(job, namespace):
    """Per-test outcomes and the breach ("memory" or None). The program loads under the per-test time
    limit; when it fails to load, every test fails with its message."""
    tests, seconds = job["tests"], job["test_time_s"]
    try:
        loaded = run_code(job["program"], namespace, seconds)
        if loaded != "passed":
            return [loaded] * len(tests), None
        return [run_code(test, namespace, seconds) for test in tests], None
    except MemoryError:
        return [], "memory"


def worker(job, result_fd):
    workdir = os.path.realpath(os.getcwd())
    # Import ctypes now: importing it opens the main program, dlopen(None), which the guard refuses later
    # (numpy and torch import ctypes).
    import ctypes  # noqa: F401

    if job["audit_hook"]:
        disable_unaudited_process_creation(result_fd)
        install_guard(workdir, result_fd)
    namespace = {"__name__": PROGRAM_MODULE, "__builtins__": builtins}
    results, breach = run_tests(job, namespace)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # output beyond the size limit: the scorer sees the file size
        pass
    write_line(result_fd, {"results": results, "breach": breach})
    os._exit(0)


def supervise(worker_pid, job, result_fd):
    """Wait for the worker, reaping any orphan meanwhile (as pid 1 of a namespace it inherits them); end
    the run at once when the scorer is gone (the lifeline pipe, whose only writer is the scorer, reads
    EOF), or at the backstop alarm."""
    def end_run(signum=None, frame=None):
        os.kill(worker_pid, signal.SIGKILL)
        os._exit(124)

    # A handler, not the default action: pid 1 of a namespace ignores signals it has no handler for.
    signal.signal(signal.SIGALRM, end_run)
    signal.alarm(int(job["wall_time_s"]) + 2)
    lifeline, worker_exited = job["lifeline_fd"], os.pidfd_open(worker_pid)
    while True:
        ready = select.select([worker_exited, lifeline], [], [], 1.0)[0]
        if lifeline in ready:  # readable means EOF: nothing is ever written to it
            end_run()
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
            if pid == worker_pid:
                cpu_s = usage.ru_utime + usage.ru_stime
                if os.WIFSIGNALED(status):
                    write_line(result_fd, {"signal": os.WTERMSIG(status), "cpu_s": cpu_s})
                else:
                    write_line(result_fd, {"exit": os.waitstatus_to_exitcode(status), "cpu_s": cpu_s})
                return


def main():
    job = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    result_fd = job["result_fd"]
    set_limits(job)
    worker_pid = os.fork()
    if worker_pid == 0:
        try:
            os.close(job["lifeline_fd"])
            worker(job, result_fd)
        finally:
            os._exit(1)
    supervise(worker_pid, job, result_fd)


if __name__ == "__main__":
    main()

"""The hostile corpus (``tests/hostile_programs``) and the checks that a sandbox run contained it.

Each program is run by ``rewards.sandbox.run_program`` with two trivial tests (``assert True``), after
its placeholders are filled: ``@OUTSIDE@`` is a folder outside the sandbox planted with canaries
(``canary.txt``, ``keep/inner.txt``, a listening Unix socket) and a secret (in ``secret.txt`` and in a
file name; the same secret is in the scorer's environment as ``LOOKAHEAD_TEST_SECRET``), and
``@MARKER@`` is ``lookahead-hostile-<program>``, the name of anything it makes in ``/tmp``, ``/dev/shm``
or System V shared memory. Every program is written to fail (raise, or be stopped) when its attack is
contained, so a contained program scores 0. A run is **contained** when

* the planted folder is unchanged: no entry added, removed, renamed, or changed in content, mode,
  size or modification time, and no connection reached its socket;
* the secret appears nowhere in the run's results or error;
* nothing named with its marker appeared in ``/tmp`` or ``/dev/shm``, and no System V segment with
  its marker's key appeared;
* it scored 0.

Across a whole batch (``batch_leftovers``): no sandbox process (``sandbox_runner.py``, ``bwrap``) and
no ``lookahead-sandbox-*`` temporary directory is left that was not there before.

    python tests/hostile_corpus.py [--no_audit_hook] [--allow_unconfined]
        # run the corpus through this checkout's sandbox and print the containment table (from the repo
        # root); --allow_unconfined lets it run without bubblewrap, e.g. with bwrap off the PATH
"""
from __future__ import annotations

import hashlib
import os
import secrets
import socket
import stat
import sys
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HOSTILE = Path(__file__).parent / "hostile_programs"
PROGRAMS = sorted(HOSTILE.glob("*.py"))
TESTS = ["assert True", "assert 1 + 1 == 2"]
SECRET_ENV = "LOOKAHEAD_TEST_SECRET"
RUNNER_NAMES = (b"sandbox_runner.py", b"bwrap")


def expected_error(path: Path) -> str | None:
    """The ``# expect: <text>`` of a program's first line: a part of the error its run must report
    while the audit hook is on; None when the program names none (an OS layer may stop it first)."""
    first = path.read_text().splitlines()[0]
    return first.removeprefix("# expect: ") if first.startswith("# expect: ") else None


def marker(path: Path) -> str:
    return f"lookahead-hostile-{path.stem}"


def program_text(path: Path, outside: Path) -> str:
    return path.read_text().replace("@OUTSIDE@", str(outside)).replace("@MARKER@", marker(path))


def plant(outside: Path, token: str) -> socket.socket:
    """Fill ``outside`` with the canaries and the secret; returns the listening Unix socket."""
    (outside / "keep").mkdir(parents=True)
    (outside / "canary.txt").write_text("canary\n")
    (outside / "keep" / "inner.txt").write_text("inner canary\n")
    (outside / "secret.txt").write_text(f"secret {token}\n")
    (outside / f"name-{token}").write_text("")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(outside / "listen.sock"))
    listener.listen(4)
    listener.setblocking(False)
    return listener


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (itself included): type, mode, size, mtime, content hash, link target."""
    entries = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        kind = stat.S_IFMT(info.st_mode)
        content = (hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode)
                   else os.readlink(path) if stat.S_ISLNK(info.st_mode) else None)
        entries[str(path.relative_to(root))] = (kind, stat.S_IMODE(info.st_mode), info.st_size,
                                                info.st_mtime_ns, content)
    return entries


def sysv_shm_keys() -> set[int]:
    try:
        lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except OSError:
        return set()
    return {int(line.split()[0]) for line in lines if line.strip()}


def _marked_names(folder: str, name: str) -> list[str]:
    try:
        return [entry for entry in os.listdir(folder) if name in entry]
    except OSError:
        return []


def sandbox_processes() -> set[int]:
    """Pids whose command line names the sandbox (its runner or bwrap) or a hostile marker."""
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes()
        except OSError:  # ended meanwhile
            continue
        if any(name in text for name in RUNNER_NAMES) or b"lookahead-hostile" in text:
            pids.add(int(cmdline.parent.name))
    return pids


def sandbox_temp_dirs() -> set[str]:
    return set(_marked_names(tempfile.gettempdir(), "lookahead-sandbox-"))


@dataclass
class Outcome:
    """One program's run: the sandbox's ``RunResult`` and every way it got out (empty: contained)."""
    name: str
    run: object
    escapes: list[str] = field(default_factory=list)

    @property
    def contained(self) -> bool:
        return not self.escapes


def run_one(path: Path, base: Path, token: str, limits, audit_hook: bool = True, **options) -> Outcome:
    """Plant ``base/<program>/outside``, run the program in the sandbox, check what it touched."""
    from rewards.sandbox import run_program

    outside = base / path.stem / "outside"
    listener = plant(outside, token)
    before = snapshot(outside)
    key = zlib.crc32(marker(path).encode()) & 0x7FFFFFFF
    folders = (tempfile.gettempdir(), "/tmp", "/dev/shm")
    marked_before = {(folder, name) for folder in folders for name in _marked_names(folder, marker(path))}
    key_before = key in sysv_shm_keys()
    extra = {**options, **({} if audit_hook else {"audit_hook": False})}
    try:
        run = run_program(program_text(path, outside), TESTS, limits, **extra)
        outcome = Outcome(path.stem, run)
        try:
            listener.accept()[0].close()
            outcome.escapes.append("connected to the planted socket")
        except BlockingIOError:
            pass
    finally:
        listener.close()
    after = snapshot(outside)
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            change = "added" if name not in before else "removed" if name not in after else "changed"
            outcome.escapes.append(f"{change} {outside / name}")
    if token in f"{run.results} {run.error}":
        outcome.escapes.append("the secret is in its results")
    for folder in dict.fromkeys(folders):
        outcome.escapes += [f"made {folder}/{name}" for name in _marked_names(folder, marker(path))
                            if (folder, name) not in marked_before]
    if key in sysv_shm_keys() and not key_before:
        outcome.escapes.append(f"left a System V shared-memory segment (key {key})")
    if run.score != 0.0:
        outcome.escapes.append(f"scored {run.score}")
    return outcome


def run_corpus(base: Path, limits, audit_hooks: tuple[bool, ...] = (True,), workers: int = 4,
               programs: list[Path] = PROGRAMS, **options) -> dict[tuple[str, bool], Outcome]:
    """Every program once per audit-hook setting, ``workers`` runs at a time, with the secret in this
    process's environment meanwhile; keyed by (program, audit hook on). ``options`` go to ``run_program``."""
    token = secrets.token_hex(12)
    saved = os.environ.get(SECRET_ENV)
    os.environ[SECRET_ENV] = f"hunter2-{token}"
    jobs = [(path, hook) for hook in audit_hooks for path in programs]
    try:
        with ThreadPoolExecutor(workers) as pool:
            outcomes = list(pool.map(lambda job: run_one(job[0], base / ("hook" if job[1] else "no-hook"), token,
                                                         limits, job[1], **options), jobs))
    finally:
        if saved is None:
            os.environ.pop(SECRET_ENV)
        else:
            os.environ[SECRET_ENV] = saved
    return {(path.stem, hook): outcome for (path, hook), outcome in zip(jobs, outcomes)}


def batch_leftovers(processes_before: set[int], temp_dirs_before: set[str]) -> list[str]:
    """What a batch left behind: sandbox processes and temporary directories that were not there before."""
    left = [f"process {pid}: {Path(f'/proc/{pid}/cmdline').read_bytes()!r}"
            for pid in sorted(sandbox_processes() - processes_before) if Path(f"/proc/{pid}").exists()]
    return left + [f"temporary directory {name}" for name in sorted(sandbox_temp_dirs() - temp_dirs_before)]


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from rewards.sandbox import SandboxLimits

    limits = SandboxLimits(wall_time_s=6, test_time_s=2, cpu_time_s=2, memory_mb=512, max_processes=16,
                           max_output_bytes=100_000)
    audit_hook = "--no_audit_hook" not in sys.argv
    processes, temp_dirs = sandbox_processes(), sandbox_temp_dirs()
    with tempfile.TemporaryDirectory(prefix="hostile-corpus-") as base:
        options = {"allow_unconfined": True} if "--allow_unconfined" in sys.argv else {}
        outcomes = run_corpus(Path(base), limits, (audit_hook,), **options)
    print(f"| program | contained | score | how it got out | sandbox's error |\n|---|---|---|---|---|")
    for (name, _), outcome in outcomes.items():
        error = (outcome.run.error or "; ".join(sorted(set(outcome.run.results))))[:70].replace("|", "/")
        print(f"| {name} | {'yes' if outcome.contained else '**no**'} | {outcome.run.score:g} | "
              f"{'; '.join(outcome.escapes)[:90]} | {error} |")
    contained = sum(outcome.contained for outcome in outcomes.values())
    print(f"\ncontained: {contained} of {len(outcomes)} (audit hook {'on' if audit_hook else 'off'})")
    print("left behind:", batch_leftovers(processes, temp_dirs) or "nothing")


if __name__ == "__main__":
    main()

"""The unit_tests scorer: program and test extraction, the sandbox's limits, the hostile corpus."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import compute_rewards
from hostile_corpus import PROGRAMS, batch_leftovers, expected_error, run_corpus, sandbox_processes, sandbox_temp_dirs
from rewards import sandbox
from rewards.sandbox import SandboxLimits, SandboxUnavailable, isolation, run_program
from rewards.unit_tests import UnitTestScorer, extract_program, split_tests, prompt_tests, instruction_tests
from utils.io import DataError, read_jsonl, write_jsonl

SRC = Path(__file__).resolve().parents[1] / "src"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "compressed_data"
SELF_OSS = DATA / "train" / "SelfOSSInstructSC2_filtered2"
# small limits keep the hostile runs short
LIMITS = SandboxLimits(wall_time_s=6, test_time_s=2, cpu_time_s=2, memory_mb=512, max_processes=16,
                       max_output_bytes=100_000)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")
needs_bwrap = pytest.mark.skipif(
    sys.platform != "linux" or not isolation().bwrap_prefix,
    reason=f"bubblewrap cannot run here ({sys.platform == 'linux' and isolation().bwrap_problem}); "
           f"scripts/setup_env.sh installs it where apt-get works")


# --- extraction --------------------------------------------------------------------------------------

def test_extract_program_takes_the_first_python_block():
    response = ("Here:\n```python\ndef f():\n    return 1\n```\nTest:\n```python\nassert f() == 1\n```")
    assert extract_program(response) == "def f():\n    return 1\n"


def test_extract_program_accepts_a_space_before_the_tag_and_untagged_blocks():
    assert extract_program("``` python\nx = 1\n```") == "x = 1\n"
    assert extract_program("text\n```\ny = 2\n```") == "y = 2\n"


def test_extract_program_skips_other_languages_and_reads_a_cut_off_block():
    assert extract_program("```bash\nls\n```\n```py\nz = 3\n```") == "z = 3\n"
    assert extract_program("```python\ndef g():\n    return") == "def g():\n    return"


def test_extract_program_without_a_block_is_the_whole_response():
    assert extract_program("x = 1") == "x = 1"


def test_split_tests_one_per_assert_with_its_setup():
    block = "# comment\nimage = [[1, 2]]\nassert f(image) == [[2, 1]]\nassert f([]) == []\n"
    assert split_tests(block) == ["image = [[1, 2]]\nassert f(image) == [[2, 1]]", "assert f([]) == []"]


def test_split_tests_counts_a_loop_of_asserts_once_and_keeps_unparsable_blocks_whole():
    assert split_tests("for x in [1, 2]:\n    assert f(x)\n") == ["for x in [1, 2]:\n    assert f(x)"]
    assert split_tests("assert f(1) ==\n") == ["assert f(1) ==\n"]
    assert split_tests("print(f(1))\n") == ["print(f(1))\n"]


def test_prompt_tests_read_the_block_after_the_heading():
    prompt = ("Write f.\n```python\nassert example()\n```\nYour code should pass the following assertions:\n"
              "```python\nassert f(1) == 2\nassert f(2) == 3\n```")
    assert prompt_tests(prompt) == ["assert f(1) == 2", "assert f(2) == 3"]


def test_instruction_tests_prefer_the_tests_field_and_refuse_queries_without_tests():
    assert instruction_tests({"prompt_id": "a", "prompt": "p", "tests": ["assert True"]}) == ["assert True"]
    block = "assert 1\nassert 2\n"
    assert instruction_tests({"prompt_id": "a", "prompt": "p", "tests": block}) == ["assert 1", "assert 2"]
    with pytest.raises(DataError, match="'b'.*no tests"):
        instruction_tests({"prompt_id": "b", "prompt": "Write f."})
    with pytest.raises(DataError, match="field 'tests'"):
        instruction_tests({"prompt_id": "c", "prompt": "p", "tests": 3})


def test_extract_program_stops_at_a_closing_fence_when_the_response_starts_with_code():
    # no opening fence: the code is what comes before the fence, the prose after it is not run
    response = "def add_one(x):\n    return x + 1\n```\n\nThis function adds one to x."
    assert extract_program(response, ["assert add_one(1) == 2"]) == "def add_one(x):\n    return x + 1\n"
    glued = "def add_one(x):\n    return x + 1```\nThis adds one."
    assert extract_program(glued, ["assert add_one(1) == 2"]) == "def add_one(x):\n    return x + 1\n"


def test_extract_program_reads_code_on_the_fence_line():
    response = "```def add_one(x):\n    return x + 1\n```\nDone."
    assert extract_program(response, ["assert add_one(1) == 2"]) == "def add_one(x):\n    return x + 1\n"
    assert extract_program("```python\ndef f(x): return x```", ["assert f(1) == 1"]) == "def f(x): return x\n"


def test_extract_program_passes_over_a_shell_block_and_a_usage_example_before_the_solution():
    solution = "```python\ndef add_one(x):\n    return x + 1\n```"
    shell_first = f"First install:\n```\npip install numpy\n```\nThen:\n{solution}"
    example_first = f"Usage:\n```python\nprint(add_one(3))  # 4\n```\nSolution:\n{solution}"
    for response in (shell_first, example_first):
        assert extract_program(response, ["assert add_one(1) == 2"]) == "def add_one(x):\n    return x + 1\n"


def test_extract_program_joins_a_solution_split_over_blocks_and_leaves_out_the_examples():
    response = ("```python\nimport math\n\ndef helper(x):\n    return math.floor(x)\n```\nThen:\n"
                "```python\ndef f(x):\n    return helper(x) + 1\n```\nExample:\n```python\nprint(f(2.5))\n```")
    assert extract_program(response, ["assert f(2.5) == 3"]) == (  # the helper's statements, then the block
        "import math\ndef helper(x):\n    return math.floor(x)\n\ndef f(x):\n    return helper(x) + 1\n")
    # names a test defines for the next one are not asked of the program; an import a block forgot is
    # taken from the block that has it, not the rest of that block
    response = ("```python\ndef area(r):\n    return math.pi * r ** 2\n```\n"
                "```python\nimport math\nr = 2\nprint(area(r))\n```")
    assert extract_program(response, ["r = 1\nassert area(r) > 3", "assert area(r) < 4"]) == (
        "import math\n\ndef area(r):\n    return math.pi * r ** 2\n")


def test_extract_program_keeps_a_solution_that_does_not_parse_and_ignores_a_word_of_prose():
    # the solution's syntax error is what the tests should report, not a NameError from the test block
    response = "```python\ndef f(x):\n    return (x\n```\n```python\nassert f(1) == 1\n```"
    assert extract_program(response, ["assert f(1) == 1"]) == "def f(x):\n    return (x\n"
    assert extract_program("Solution\n```\ny = 2\n```") == "y = 2\n"


# --- the sandbox on ordinary programs ------------------------------------------------------------------

@needs_bwrap
def test_results_match_the_recorded_format():
    run = run_program("def f(x):\n    return x + 1\n",
                      ["assert f(1) == 2", "assert f(1) == 3", "assert g(1)", "raise ValueError('bad')"], LIMITS)
    assert run.results == ["passed", "failed: ", "failed: name 'g' is not defined", "failed: bad"]
    assert (run.passed, run.score, run.error) == (1, 0.25, None)


@needs_bwrap
def test_a_program_that_does_not_load_fails_every_test_the_same_way():
    run = run_program("def f(:\n", ["assert f(1)", "assert f(2)"], LIMITS)
    assert run.results == ["failed: invalid syntax (<string>, line 1)"] * 2
    assert (run.score, run.error) == (0.0, None)


@needs_bwrap
def test_a_slow_test_times_out_and_the_others_still_count():
    run = run_program("import time\n", ["assert 1", "time.sleep(30)", "assert 2"], LIMITS)
    assert run.results == ["passed", "timed out", "passed"]
    assert run.score == pytest.approx(2 / 3)


@needs_bwrap
def test_a_main_block_that_reads_standard_input_does_not_run():
    # human-eval style harnesses do not run it; run, it would meet an empty standard input (EOFError)
    program = ("def add_one(x):\n    return x + 1\n\n"
               "if __name__ == '__main__':\n    print(add_one(int(input())))\n")
    run = run_program(program, ["assert add_one(1) == 2", "assert __name__ != '__main__'"], LIMITS)
    assert (run.results, run.score, run.error) == (["passed", "passed"], 1.0, None)


@needs_bwrap
def test_files_inside_its_directory_threads_and_numpy_work():
    program = ("import json, threading, numpy as np\n"
               "json.dump({'a': 1}, open('data.json', 'w'))\n"
               "box = []\nt = threading.Thread(target=lambda: box.append(int(np.sum([1, 2]))))\nt.start()\nt.join()\n")
    run = run_program(program, ["assert json.load(open('data.json')) == {'a': 1}", "assert box == [3]"], LIMITS)
    assert run.results == ["passed", "passed"]


@needs_bwrap
def test_warnings_mimetypes_tempfile_and_its_own_proc_entry_are_allowed():
    program = ("import mimetypes, tempfile, warnings\nwarnings.warn('careful', stacklevel=2)\n"
               "maps = open('/proc/self/maps').read()\nwith tempfile.TemporaryFile() as f:\n    f.write(b'x')\n")
    run = run_program(program, ["assert mimetypes.guess_type('a.txt')[0] == 'text/plain'", "assert maps"], LIMITS)
    assert (run.results, run.error) == (["passed", "passed"], None)


@needs_bwrap
def test_reading_system_files_is_refused_by_the_hook_and_absent_without_it():
    run = run_program("open('/etc/passwd').read()\n", ["assert True"], LIMITS)
    assert run.error == "sandbox violation: reads outside its directory: /etc/passwd"
    # the operating system's boundary alone: the host's files are not there, its root is read-only
    hidden = ["/etc/passwd", "/home", "/tmp", "/var", "/run", os.path.expanduser("~/.ssh"), str(SRC), str(DATA),
              str(Path(__file__).resolve())]
    # the running Python is bound read-only at its own path, so its parent folders exist (a checkout under /tmp)
    pythons = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
    hidden = [path for path in hidden if not any(python.startswith(os.path.realpath(path) + os.sep)
                                                 for python in pythons)]
    assert "/etc/passwd" in hidden and str(SRC) in hidden
    run = run_program("import os\n", [f"assert not os.path.exists({path!r})" for path in hidden] + ["open('/x', 'w')"],
                      LIMITS, audit_hook=False)
    assert run.results == ["passed"] * len(hidden) + ["failed: [Errno 30] Read-only file system: '/x'"]


@needs_bwrap
def test_the_environment_holds_no_secrets_and_home_is_its_directory(monkeypatch):
    monkeypatch.setenv("LOOKAHEAD_TEST_SECRET", "hunter2")
    run = run_program("import os\n", ["assert 'LOOKAHEAD_TEST_SECRET' not in os.environ",
                                      "assert os.environ['HOME'] == os.getcwd() == os.environ['TMPDIR']",
                                      "assert (os.getuid(), os.getgid()) == (65534, 65534)"], LIMITS)
    assert run.results == ["passed", "passed", "passed"]


@needs_bwrap
def test_its_directory_is_capped_at_disk_mb_even_in_files_under_the_size_limit():
    # 5 files of 400 KB (each under max_output_bytes) fill a 1 MB tmpfs at the third
    program = ("written = 0\ntry:\n    for i in range(5):\n        with open(f'f{i}', 'wb') as f:\n"
               "            f.write(b'x' * 400_000)\n        written += 1\nexcept OSError as e:\n    error = e.errno\n")
    limits = SandboxLimits(wall_time_s=10, max_output_bytes=500_000, disk_mb=1)
    run = run_program(program, ["assert written == 2", "assert error == 28"], limits)  # ENOSPC
    assert run.results == ["passed", "passed"]


@pytest.mark.skipif(os.geteuid() == 0 and not isolation().pids_cgroup_parent,
                    reason="root without a pids cgroup has no OS-level process limit")
@needs_bwrap
def test_the_process_limit_stops_threads_past_it():
    program = ("import threading, time\nstarted = 0\n"
               "try:\n    for _ in range(100):\n"
               "        threading.Thread(target=time.sleep, args=(3,), daemon=True).start()\n"
               "        started += 1\nexcept RuntimeError:\n    pass\n")
    limits = SandboxLimits(wall_time_s=10, max_processes=8, memory_mb=2048)
    run = run_program(program, ["assert 0 < started < 8, started"], limits)
    assert run.results == ["passed"]


@pytest.mark.skipif(not isolation().pids_cgroup_parent, reason="no pids cgroup here (not root, or none mounted)")
@needs_bwrap
def test_the_pids_cgroup_caps_forks_without_the_audit_hook():
    # 8 tasks: bwrap, its pid-1 reaper, the supervisor and the worker leave 4 forks; children sleep
    program = ("import os, time\nforks = 0\nfor _ in range(50):\n    try:\n        pid = os.fork()\n"
               "    except OSError:\n        break\n    if pid == 0:\n        time.sleep(5)\n        os._exit(0)\n"
               "    forks += 1\n")
    run = run_program(program, ["assert forks == 4, forks"], SandboxLimits(wall_time_s=10, max_processes=8),
                      audit_hook=False)
    assert run.results == ["passed"]


# --- without bubblewrap -------------------------------------------------------------------------------

@pytest.fixture
def no_bwrap(monkeypatch):
    """This process's sandbox as on a machine where bubblewrap cannot run."""
    monkeypatch.setattr(sandbox, "_isolation", None)
    monkeypatch.setattr(sandbox, "_probe_bwrap", lambda: ((), "bwrap is not installed"))
    return isolation()


def test_without_bwrap_model_code_is_refused_unless_unconfined_runs_are_allowed(no_bwrap, tmp_path):
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap.*--allow_unconfined_code"):
        run_program("x = 1", ["assert x == 1"], LIMITS)
    with pytest.raises(SandboxUnavailable, match="bwrap is not installed"):
        UnitTestScorer(LIMITS)
    set_dir = tmp_path / "set"
    write_jsonl(set_dir / "instructions.jsonl", [{"prompt_id": "a", "prompt": "p", "tests": ["assert x == 1"]}])
    write_jsonl(set_dir / "responses" / "m.jsonl", [{"prompt_id": "a", "response": "```python\nx = 1\n```"}])
    before = (set_dir / "responses" / "m.jsonl").read_bytes()
    with pytest.raises(SandboxUnavailable):
        compute_rewards.main(scorer="unit_tests", data_dir=str(set_dir), llms="m")
    assert sorted(p.name for p in (set_dir / "responses").iterdir()) == ["m.jsonl"]
    assert (set_dir / "responses" / "m.jsonl").read_bytes() == before
    compute_rewards.main(scorer="unit_tests", data_dir=str(set_dir), llms="m", allow_unconfined_code=True)
    assert read_jsonl(set_dir / "responses" / "m.jsonl")[0]["score"] == 1.0


def test_an_unconfined_run_works_in_a_temporary_directory_named_with_its_scorer(no_bwrap):
    run = run_program("import os\nhere = os.getcwd()\n",
                      [f"assert os.path.basename(here).startswith('lookahead-sandbox-{os.getpid()}-')",
                       f"assert os.path.dirname(here) == {tempfile.gettempdir()!r}"], LIMITS, allow_unconfined=True)
    assert run.results == ["passed", "passed"]
    assert not [name for name in sandbox_temp_dirs() if name.startswith(f"lookahead-sandbox-{os.getpid()}-")]


# --- the hostile corpus ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Every hostile program with the audit hook on and off, 4 runs at a time, and what the batch left."""
    processes, temp_dirs = sandbox_processes(), sandbox_temp_dirs()
    outcomes = run_corpus(tmp_path_factory.mktemp("hostile"), LIMITS, audit_hooks=(True, False))
    return outcomes, batch_leftovers(processes, temp_dirs)


def test_the_corpus_covers_the_earlier_ten_and_at_least_forty_programs():
    earlier = {"allocate_memory", "flood_output", "fork_bomb", "infinite_loop", "kill_parent", "open_socket",
               "read_secrets", "sleep_forever", "subprocess_bomb", "write_outside"}
    assert earlier <= {path.stem for path in PROGRAMS} and len(PROGRAMS) >= 40


@needs_bwrap
@pytest.mark.parametrize("audit_hook", [True, False], ids=["hook", "no_hook"])
@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_every_hostile_program_is_contained_and_scores_zero(corpus, path, audit_hook):
    """Canaries unread, unchanged and undeleted, nothing new outside, no secret in its results, score
    0; with the audit hook on, the reason the program's header names (where it names one)."""
    outcome = corpus[0][(path.stem, audit_hook)]
    assert outcome.escapes == []
    assert (outcome.run.score, outcome.run.passed, len(outcome.run.results)) == (0.0, 0, 2)
    if audit_hook and expected_error(path):
        assert expected_error(path) in (outcome.run.error or "")


@needs_bwrap
def test_the_corpus_leaves_no_process_or_temporary_directory(corpus):
    assert corpus[1] == []
    if isolation().pids_cgroup_parent:
        assert not list(isolation().pids_cgroup_parent.glob(f"lookahead-sandbox-{os.getpid()}-*"))


@needs_bwrap
def test_the_scorer_scores_hostile_and_ordinary_programs_and_leaves_nothing_behind():
    scorer = UnitTestScorer(LIMITS, num_workers=2)
    hostile = ["write_outside", "kill_parent", "flood_output"]
    responses = [f"```python\n{(PROGRAMS[0].parent / f'{name}.py').read_text()}```" for name in hostile]
    responses.append("```python\nx = 1\n```")
    instructions = [{"prompt_id": str(i), "prompt": "p", "tests": ["assert x == 1"]} for i in range(len(responses))]
    processes, temp_dirs = sandbox_processes(), sandbox_temp_dirs()
    records = scorer.score(instructions, responses)
    assert [r["score"] for r in records] == [0.0, 0.0, 0.0, 1.0]
    assert all(r["error"] for r in records[:-1])
    assert records[-1] == {"prediction": "x = 1\n", "results": ["passed"], "passed": 1, "score": 1.0, "error": None}
    assert batch_leftovers(processes, temp_dirs) == []


# --- a scorer killed with SIGKILL ----------------------------------------------------------------------

KILLED_SCORER = """
import sys
sys.path.insert(0, {src!r})
from concurrent.futures import ThreadPoolExecutor
from rewards.sandbox import SandboxLimits, run_program
limits = SandboxLimits(wall_time_s=120, test_time_s=120, cpu_time_s=120)
program = "import time\\nopen('f', 'w').write('x')\\ntime.sleep(120)\\n"
with ThreadPoolExecutor(3) as pool:
    list(pool.map(lambda _: run_program(program, ['assert True'], limits, allow_unconfined=True), range(3)))
"""
RERUN = ("import sys\nsys.path.insert(0, {src!r})\nfrom rewards.sandbox import run_program\n"
         "assert run_program('x = 1', ['assert x == 1'], allow_unconfined=True).score == 1.0\n")


def _runners() -> set[int]:
    return {pid for pid in sandbox_processes() if b"sandbox_runner.py" in Path(f"/proc/{pid}/cmdline").read_bytes()}


def _named_with(pid: int) -> list[str]:
    cgroups = list(isolation().pids_cgroup_parent.glob(f"lookahead-sandbox-{pid}-*")) if isolation().pids_cgroup_parent else []
    return [str(path) for path in cgroups] + [name for name in sandbox_temp_dirs() if name.startswith(f"lookahead-sandbox-{pid}-")]


@pytest.mark.parametrize("confined", [True, False], ids=["bwrap", "unconfined"])
def test_a_scorer_killed_with_sigkill_leaves_nothing_once_the_next_one_starts(confined):
    if confined and not isolation().bwrap_prefix:
        pytest.skip(f"bubblewrap cannot run here ({isolation().bwrap_problem})")
    env = {**os.environ, "PATH": os.environ["PATH"] if confined else "/nonexistent"}  # no bwrap on the PATH
    before = _runners()
    scorer = subprocess.Popen([sys.executable, "-c", KILLED_SCORER.format(src=str(SRC))], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(_runners() - before) < 6 and time.monotonic() < deadline:  # 3 runs: supervisor and worker each
            time.sleep(0.1)
        assert len(_runners() - before) >= 6
        assert _named_with(scorer.pid) or (confined and not isolation().pids_cgroup_parent)
    finally:
        scorer.send_signal(signal.SIGKILL)
        scorer.wait()
    # the runs end with the scorer (bwrap --die-with-parent; the runner's lifeline pipe)
    deadline = time.monotonic() + 10
    while _runners() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _runners() - before
    assert _named_with(scorer.pid) or not isolation().pids_cgroup_parent  # the cgroups are left, empty
    subprocess.run([sys.executable, "-c", RERUN.format(src=str(SRC))], env=env, check=True, timeout=120)
    assert _named_with(scorer.pid) == []


# --- the recorded Self-OSS data --------------------------------------------------------------------------

@pytest.mark.skipif(not SELF_OSS.exists(), reason="the paper's data is not in ../shared/data")
@needs_bwrap
def test_recorded_correct_predictions_pass_their_visible_assertions():
    """A response that passed all the recorded (hidden) tests passes the prompt's visible ones, with
    rare exceptions where the visible assertion itself disagrees with the hidden tests."""
    instructions = {row["prompt_id"]: row for row in read_jsonl(SELF_OSS / "instructions.jsonl")}
    recorded = [row for row in read_jsonl(SELF_OSS / "responses" / "Qwen2.5-Coder-7B-Instruct.jsonl")
                if row["score"] == 1.0][:12]
    passed = [run_program(row["prediction"], instruction_tests(instructions[row["prompt_id"]]), LIMITS).score == 1.0
              for row in recorded]
    assert sum(passed) >= 11



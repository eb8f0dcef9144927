"""The unit_tests scorer: program and test extraction, the sandbox's limits, the hostile corpus."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewards.sandbox import SandboxLimits, isolation, run_program
from rewards.unit_tests import UnitTestScorer, extract_program, split_tests, prompt_tests, instruction_tests
from utils.io import DataError, read_jsonl

HOSTILE = Path(__file__).parent / "hostile_programs"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "compressed_data"
SELF_OSS = DATA / "train" / "SelfOSSInstructSC2_filtered2"
# small limits keep the hostile runs short
LIMITS = SandboxLimits(wall_time_s=6, test_time_s=2, cpu_time_s=2, memory_mb=512, max_processes=16,
                       max_output_bytes=100_000)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux")


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


# --- the sandbox on ordinary programs ------------------------------------------------------------------

def test_results_match_the_recorded_format():
    run = run_program("def f(x):\n    return x + 1\n",
                      ["assert f(1) == 2", "assert f(1) == 3", "assert g(1)", "raise ValueError('bad')"], LIMITS)
    assert run.results == ["passed", "failed: ", "failed: name 'g' is not defined", "failed: bad"]
    assert (run.passed, run.score, run.error) == (1, 0.25, None)


def test_a_program_that_does_not_load_fails_every_test_the_same_way():
    run = run_program("def f(:\n", ["assert f(1)", "assert f(2)"], LIMITS)
    assert run.results == ["failed: invalid syntax (<string>, line 1)"] * 2
    assert (run.score, run.error) == (0.0, None)


def test_a_slow_test_times_out_and_the_others_still_count():
    run = run_program("import time\n", ["assert 1", "time.sleep(30)", "assert 2"], LIMITS)
    assert run.results == ["passed", "timed out", "passed"]
    assert run.score == pytest.approx(2 / 3)


def test_files_inside_its_directory_threads_and_numpy_work():
    program = ("import json, threading, numpy as np\n"
               "json.dump({'a': 1}, open('data.json', 'w'))\n"
               "box = []\nt = threading.Thread(target=lambda: box.append(int(np.sum([1, 2]))))\nt.start()\nt.join()\n")
    run = run_program(program, ["assert json.load(open('data.json')) == {'a': 1}", "assert box == [3]"], LIMITS)
    assert run.results == ["passed", "passed"]


def test_warnings_mimetypes_and_its_own_proc_entry_are_allowed():
    program = ("import mimetypes, warnings\nwarnings.warn('careful', stacklevel=2)\n"
               "maps = open('/proc/self/maps').read()\n")
    run = run_program(program, ["assert mimetypes.guess_type('a.txt')[0] == 'text/plain'", "assert maps"], LIMITS)
    assert (run.results, run.error) == (["passed", "passed"], None)


def test_reading_system_files_is_refused():
    run = run_program("open('/etc/passwd').read()\n", ["assert True"], LIMITS)
    assert run.error == "sandbox violation: reads outside its directory: /etc/passwd"


def test_the_environment_holds_no_secrets_and_home_is_its_directory(monkeypatch):
    monkeypatch.setenv("LOOKAHEAD_TEST_SECRET", "hunter2")
    run = run_program("import os\n", ["assert 'LOOKAHEAD_TEST_SECRET' not in os.environ",
                                      "assert os.environ['HOME'] == os.getcwd() == os.environ['TMPDIR']"], LIMITS)
    assert run.results == ["passed", "passed"]


@pytest.mark.skipif(os.geteuid() == 0 and not isolation().pids_cgroup_parent,
                    reason="root without a pids cgroup has no OS-level process limit")
def test_the_process_limit_stops_threads_past_it():
    program = ("import threading, time\nstarted = 0\n"
               "try:\n    for _ in range(100):\n"
               "        threading.Thread(target=time.sleep, args=(3,), daemon=True).start()\n"
               "        started += 1\nexcept RuntimeError:\n    pass\n")
    limits = SandboxLimits(wall_time_s=10, max_processes=8, memory_mb=2048)
    run = run_program(program, ["assert 0 < started < 8, started"], limits)
    assert run.results == ["passed"]


@pytest.mark.skipif(not isolation().namespace_prefix, reason="unshare is not available here")
def test_the_network_namespace_has_no_route_even_without_the_audit_hook():
    # the OS layer on its own: a plain Python in the same namespaces as the sandbox
    code = ("import socket\ns = socket.socket()\ns.settimeout(2)\n"
            "try:\n    s.connect(('1.1.1.1', 80))\n    print('connected')\nexcept OSError as e:\n    print(e.errno)\n")
    done = subprocess.run([*isolation().namespace_prefix, sys.executable, "-I", "-c", code],
                          capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "101"  # ENETUNREACH


# --- the hostile corpus ------------------------------------------------------------------------------

def _expected(path: Path) -> str:
    return path.read_text().splitlines()[0].removeprefix("# expect: ")


@pytest.mark.parametrize("path", sorted(HOSTILE.glob("*.py")), ids=lambda p: p.stem)
def test_every_hostile_program_is_contained_and_scores_zero_with_a_reason(path, monkeypatch):
    monkeypatch.setenv("LOOKAHEAD_TEST_SECRET", "hunter2")
    escape = Path("/tmp/lookahead-hostile-escape.txt")
    escape.unlink(missing_ok=True)
    run = run_program(path.read_text(), ["assert True", "assert 1 + 1 == 2"], LIMITS)
    assert run.score == 0.0 and run.passed == 0
    assert _expected(path) in run.error
    assert len(run.results) == 2
    assert not escape.exists()
    assert "hunter2" not in str(run)


def _runner_pids() -> set[str]:
    pids = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"sandbox_runner.py" in cmdline.read_bytes():
                pids.add(cmdline.parent.name)
        except OSError:  # the process ended meanwhile
            pass
    return pids


def test_the_scorer_finishes_the_whole_corpus_and_leaves_no_process_or_cgroup_behind():
    scorer = UnitTestScorer(LIMITS, num_workers=2)
    programs = sorted(HOSTILE.glob("*.py"))
    responses = [f"```python\n{path.read_text()}```" for path in programs] + ["```python\nx = 1\n```"]
    instructions = [{"prompt_id": str(i), "prompt": "p", "tests": ["assert x == 1"]} for i in range(len(responses))]
    before = _runner_pids()
    records = scorer.score(instructions, responses)
    assert [r["score"] for r in records] == [0.0] * len(programs) + [1.0]
    assert all(r["error"] for r in records[:-1]) and records[-1]["error"] is None
    assert records[-1] == {"prediction": "x = 1\n", "results": ["passed"], "passed": 1, "score": 1.0, "error": None}
    assert _runner_pids() <= before  # runners of another scorer on this machine may have been there before
    if isolation().pids_cgroup_parent:
        assert not list(isolation().pids_cgroup_parent.glob(f"lookahead-sandbox-{os.getpid()}-*"))


# --- the recorded Self-OSS data --------------------------------------------------------------------------

@pytest.mark.skipif(not SELF_OSS.exists(), reason="the paper's data is not in ../shared/data")
def test_recorded_correct_predictions_pass_their_visible_assertions():
    """A response that passed all the recorded (hidden) tests passes the prompt's visible ones, with
    rare exceptions where the visible assertion itself disagrees with the hidden tests."""
    instructions = {row["prompt_id"]: row for row in read_jsonl(SELF_OSS / "instructions.jsonl")}
    recorded = [row for row in read_jsonl(SELF_OSS / "responses" / "Qwen2.5-Coder-7B-Instruct.jsonl")
                if row["score"] == 1.0][:12]
    passed = [run_program(row["prediction"], instruction_tests(instructions[row["prompt_id"]]), LIMITS).score == 1.0
              for row in recorded]
    assert sum(passed) >= 11


@pytest.mark.skipif(not isolation().pids_cgroup_parent, reason="no pids cgroup here (not root, or none mounted)")
def test_the_pids_cgroup_caps_forks_that_bypass_the_audit_hook():
    # the OS layer on its own, with a bounded fork loop: children sleep, the parent counts its forks
    from rewards.sandbox import _make_cgroup, _remove_cgroup

    cgroup = _make_cgroup(isolation().pids_cgroup_parent, 8)
    code = (f"import os, time\nopen({str(cgroup / 'cgroup.procs')!r}, 'w').write(str(os.getpid()))\nn = 0\n"
            "for _ in range(50):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
            "    if pid == 0:\n        time.sleep(5)\n        os._exit(0)\n    n += 1\nprint(n)\n")
    try:
        done = subprocess.run([*isolation().namespace_prefix, sys.executable, "-I", "-c", code],
                              capture_output=True, text=True, timeout=30)
    finally:
        _remove_cgroup(cgroup)
    assert done.stdout.strip() == "7"  # 8 tasks: the parent and 7 children
    assert not cgroup.exists()

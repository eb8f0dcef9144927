"""Every case of the bad-input battery (scripts/bad_inputs.py) is a test: the tool must stop with a non-zero exit and
an error that names what the case asks for (file, line, field or flag, fix).

The tools run inside this interpreter (``run_tool(..., python=None)``), which gives the exit code a process would
give; two cases per tool also run as real processes, to check that the in-process verdicts are the processes'."""
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import bad_inputs  # noqa: E402

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return bad_inputs.build_workspace(tmp_path_factory.mktemp("bad-inputs") / "workspace", SRC, python=None)


@pytest.mark.parametrize("case", bad_inputs.CASES, ids=[f"{c.tool}: {c.name}" for c in bad_inputs.CASES])
def test_bad_input_is_refused_clearly(case, workspace, tmp_path):
    verdict, missing, outcome = bad_inputs.run_case(case, workspace, tmp_path, SRC, python=None)
    assert outcome.exit_code not in (0, None), f"accepted: exit {outcome.exit_code}"
    assert verdict == "held", f"the message lacks {missing}: {outcome.message}"


def test_the_judge_tells_held_weak_and_failed():
    case = bad_inputs.Case("x", "data", lambda ws: [], file="A.jsonl", line=3, field="score")
    message = "/d/A.jsonl, line 3: field 'score' must be a finite number. Fix the line."
    assert bad_inputs.judge(case, bad_inputs.Outcome(1, message, 0.0)) == ("held", [])
    assert bad_inputs.judge(case, bad_inputs.Outcome(1, "UnicodeDecodeError: 'utf-8' codec can't decode", 0.0)) \
        == ("weak", ["file", "line 3", "field", "fix"])
    assert bad_inputs.judge(case, bad_inputs.Outcome(1, message.replace("line 3", "line 30"), 0.0)) \
        == ("weak", ["line 3"])
    assert bad_inputs.judge(case, bad_inputs.Outcome(0, "", 0.0)) == ("failed", ["exit 0"])
    assert bad_inputs.judge(case, bad_inputs.Outcome(None, "", 0.0)) == ("failed", ["timed out"])


def test_error_text_is_the_exception_after_the_traceback():
    stderr = ("2026 loaded\nTraceback (most recent call last):\n  File \"x.py\", line 3, in <module>\n"
              "    read(\"instructions.jsonl\")\nutils.io.DataError: /d/A.jsonl, line 2: bad.\n")
    assert bad_inputs.error_text(stderr) == "utils.io.DataError: /d/A.jsonl, line 2: bad."
    assert bad_inputs.error_text("usage: calibrate.py [-h]\nerror: argument --budget: invalid float value: 'x'\n") \
        == "error: argument --budget: invalid float value: 'x'"


PROCESS_CASES = ["compute_rewards: responses: duplicate prompt_id", "compute_rewards: instructions.jsonl.gz truncated",
                 "generate_responses: instructions: empty file", "generate_responses: --batch_size 0",
                 "eval_baseline: --output_dir is a file", "eval_baseline: --cross_fit_folds 2.5",
                 "data: training set: byte that is not UTF-8", "data: AlpacaEval preference 2.5",
                 "report: --config: byte that is not UTF-8", "report: prediction without router_scores",
                 "calibrate: --budget nan", "calibrate: validation split empty"]


@pytest.mark.slow
@pytest.mark.parametrize("name", PROCESS_CASES)
def test_a_real_process_gets_the_same_verdict(name, workspace, tmp_path):
    case = next(c for c in bad_inputs.CASES if f"{c.tool}: {c.name}" == name)
    verdict, missing, outcome = bad_inputs.run_case(case, workspace, tmp_path, SRC, python=sys.executable)
    assert outcome.exit_code not in (0, None) and verdict == "held", (outcome.exit_code, missing, outcome.message)

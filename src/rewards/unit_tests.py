"""The ``unit_tests`` scorer: run the program a response contains against the query's tests.

Records, per response, as the Self-OSS-Instruct data does: ``prediction`` (the extracted program),
``results`` (per test "passed", "failed: <message>" or "timed out"), ``passed`` and
``score = passed / len(results)``; plus ``error``, the limit or sandbox rule the run broke (then the
score is 0), else None. Tests come from the instruction's ``tests`` field when present (a list of test
snippets, or one block that is split like the prompt's), else from the assertions written in the prompt.
"""
from __future__ import annotations

import ast
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor

from utils.io import DataError

from .sandbox import SandboxLimits, describe_isolation, run_program

FENCE = re.compile(r"```[ \t]*([\w+.#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
PYTHON_TAGS = {"", "python", "py", "python3"}
TESTS_HEADING = re.compile(r"should pass the following[^\n]*\n", re.IGNORECASE)


def extract_program(response: str) -> str:
    """The first fenced code block tagged python (or untagged); the whole response when there is none.
    A block cut off by the token limit (no closing fence) runs to the end of the response."""
    for tag, body in FENCE.findall(response):
        if tag.lower() in PYTHON_TAGS:
            return body
    return response


def split_tests(block: str) -> list[str]:
    """One test per top-level statement that asserts, each with the statements since the previous test
    (the setup it needs). A block that does not parse, or has no assert, is one test."""
    try:
        statements = ast.parse(block).body
    except SyntaxError:
        return [block]
    lines = block.splitlines()
    tests, start = [], None
    for statement in statements:
        start = statement.lineno if start is None else start
        if any(isinstance(node, ast.Assert) for node in ast.walk(statement)):
            tests.append("\n".join(lines[start - 1:statement.end_lineno]))
            start = None
    return tests or [block]


def prompt_tests(prompt: str) -> list[str]:
    """The code block after "... should pass the following ...", else the last code block that asserts."""
    heading = TESTS_HEADING.search(prompt)
    if heading:
        block = FENCE.search(prompt, heading.end())
        if block:
            return split_tests(block.group(2))
    asserting = [body for _, body in FENCE.findall(prompt) if "assert" in body]
    return split_tests(asserting[-1]) if asserting else []


def instruction_tests(instruction: dict) -> list[str]:
    """The tests of one instruction (see the module docstring); DataError when there are none."""
    prompt_id = instruction.get("prompt_id")
    tests = instruction.get("tests")
    if tests is None:
        tests = prompt_tests(instruction["prompt"])
    elif isinstance(tests, str):
        tests = split_tests(tests)
    elif not (isinstance(tests, list) and all(isinstance(t, str) for t in tests)):
        raise DataError(f"instructions, prompt_id {prompt_id!r}: field 'tests' must be a list of test code "
                        f"strings or one string of test code, got {type(tests).__name__}.")
    if not tests:
        raise DataError(f"instructions, prompt_id {prompt_id!r}: no tests. Add a 'tests' field (test code) "
                        f"or write the assertions in the prompt in a ```python block.")
    return tests


class UnitTestScorer:
    """Scores responses by running their program in the sandbox, ``num_workers`` runs at a time."""

    def __init__(self, limits: SandboxLimits = SandboxLimits(), num_workers: int | None = None):
        self.limits = limits
        self.num_workers = num_workers or os.cpu_count() or 1
        print(describe_isolation(limits), file=sys.stderr)
        check = run_program("answer = 42", ["assert answer == 42"], limits)
        if check.score != 1.0:
            raise RuntimeError(f"The sandbox fails a trivial program ({check.results}, {check.error}); "
                               f"the unit-test scorer cannot run on this machine.")

    def score(self, instructions: list[dict], responses: list[str]) -> list[dict]:
        """One record per response: prediction, results, passed, score, error."""
        programs = [extract_program(response) for response in responses]
        tests = [instruction_tests(instruction) for instruction in instructions]
        with ThreadPoolExecutor(self.num_workers) as pool:
            runs = list(pool.map(lambda job: run_program(*job, self.limits), zip(programs, tests)))
        return [{"prediction": program, "results": run.results, "passed": run.passed, "score": run.score,
                 "error": run.error} for program, run in zip(programs, runs)]

"""The ``unit_tests`` scorer: run the program a response contains against the query's tests.

Records, per response, as the Self-OSS-Instruct data does: ``prediction`` (the extracted program: the
code block(s) a grader would run, see ``extract_program``),
``results`` (per test "passed", "failed: <message>" or "timed out"), ``passed`` and
``score = passed / len(results)``; plus ``error``, the limit or sandbox rule the run broke (then the
score is 0), else None. Tests come from the instruction's ``tests`` field when present (a list of test
snippets, or one block that is split like the prompt's), else from the assertions written in the prompt.
"""
from __future__ import annotations

import ast
import builtins
import keyword
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor

from utils.io import DataError

from .sandbox import SandboxLimits, describe_isolation, run_program

FENCE = re.compile(r"```[ \t]*([\w+.#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)  # blocks of a prompt
FENCE_LINE = re.compile(r"[ \t]*```+(.*)")  # a line opening or closing a block in a response
PYTHON_TAGS = {"", "python", "py", "python3"}
TESTS_HEADING = re.compile(r"should pass the following[^\n]*\n", re.IGNORECASE)
BUILTIN_NAMES = set(dir(builtins))


def _split_info(info: str) -> tuple[str, str]:
    """A fence line's text after the backticks as (language tag, code on the fence line)."""
    info = info.strip()
    word = re.match(r"[\w+.#-]*", info).group(0)
    if not info or word.lower() in PYTHON_TAGS:
        return word, ""
    if keyword.iskeyword(word) or any(ch in info for ch in "()=[]:'\"@"):
        return "", info  # "```def f(x):" is code, not a tag
    return word, ""


def _fenced_blocks(lines: list[str], open_at_start: bool) -> list[tuple[int, str, str]]:
    """(first line, tag, code) of each fenced block. ``open_at_start``: the response begins inside a
    block whose opening fence is missing. A block cut off by the token limit (no closing fence) runs to
    the end; a closing fence may follow code on its line (``return x```"``)."""
    blocks, open_block = [], (0, "", "") if open_at_start else None
    for i, line in enumerate(lines):
        fence = FENCE_LINE.fullmatch(line)
        if open_block is None:
            if fence:
                tag, code = _split_info(fence.group(1))
                if code.endswith("```"):  # a whole block on one line
                    blocks.append((i, tag, code[:-3].strip("`") + "\n"))
                else:
                    open_block = (i + 1, tag, code)
            continue
        closes_after_code = not fence and line.rstrip().endswith("```")
        if (fence and not fence.group(1).strip()) or closes_after_code:
            start, tag, first = open_block
            body = ([first] if first else []) + lines[start:i] + ([line.rstrip()[:-3]] if closes_after_code else [])
            blocks.append((start, tag, "\n".join(body) + "\n"))
            open_block = None
    if open_block is not None:
        start, tag, first = open_block
        blocks.append((start, tag, "\n".join(([first] if first else []) + lines[start:])))
    return blocks


def _names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(names bound at module level, names used but bound nowhere in the code and not builtins)."""
    bound, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    top = set()
    pending = list(tree.body) if isinstance(tree, ast.Module) else []
    while pending:  # module level: into if/try/with/for bodies, not into functions or classes
        statement = pending.pop()
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            top.add(statement.name)
            continue
        for node in ast.iter_child_nodes(statement):
            if isinstance(node, ast.stmt):
                pending.append(node)
            elif isinstance(node, ast.excepthandler):
                pending.extend(node.body)
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                top.add(node.id)
            elif isinstance(node, ast.alias):
                top.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, (ast.Tuple, ast.List, ast.Starred, ast.withitem)):
                top |= {name.id for name in ast.walk(node) if isinstance(name, ast.Name)
                        and not isinstance(name.ctx, ast.Load)}
    return top, used - bound - BUILTIN_NAMES


def _parses(code: str) -> ast.Module | None:
    """The code's syntax tree; None when it does not parse or holds nothing but bare words and
    constants (a line of prose such as "Solution" parses as a name)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    bare = (ast.Name, ast.Constant)
    if all(isinstance(node, ast.Expr) and isinstance(node.value, bare) for node in tree.body):
        return None
    return tree


def _binding_statements(tree: ast.Module, names: set[str]) -> list[ast.stmt]:
    """The module-level imports, definitions and assignments of ``tree`` that bind any of ``names``."""
    kinds = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
             ast.AnnAssign)
    return [statement for statement in tree.body
            if isinstance(statement, kinds) and _names(ast.Module([statement], []))[0] & names]


def extract_program(response: str, tests: list[str] = ()) -> str:
    """The program a grader would run from ``response``: its Python code block(s) that parse and define
    what ``tests`` call.

    Blocks are fenced (tagged python/py/python3 or untagged; other languages are left out), code on
    the fence line included (```` ```def f(): ````); a block cut off by the token limit runs to the end.
    A response that starts with code and only closes a fence has that code as its first block (the
    prose after the fence is not code). Of the blocks that parse, the first that defines every name the
    tests use without defining it (the tests run in order in one namespace) is taken; when none does,
    each block that defines a name still missing, in order. The imports, functions, classes and
    assignments of other blocks that define a name the taken code uses but does not define (a helper,
    an import) go before it. So a usage example or a shell block before the solution is passed over.
    Without tests, the first block that parses. When no block that parses defines what the tests call:
    the first Python block (its error is the tests' result); without any Python block, the whole
    response.
    """
    lines = response.split("\n")
    blocks = _fenced_blocks(lines, open_at_start=False)
    first = next((i for i, line in enumerate(lines) if "```" in line), None)
    if first is not None and (lines[first].strip() == "```" or not FENCE_LINE.fullmatch(lines[first])) \
            and "\n".join(lines[:first + 1]).replace("```", "").strip():
        blocks += _fenced_blocks(lines, open_at_start=True)  # the text before a bare first fence may be code
    python = []
    for start, tag, code in sorted(blocks, key=lambda block: block[0]):
        if tag.lower() in PYTHON_TAGS and code not in [seen for _, seen in python]:
            python.append((start, code))
    if not python:
        return response  # nothing fenced as Python: the response as written
    parsed = [(start, code, tree) for start, code in python if (tree := _parses(code)) is not None]
    if not parsed:
        return python[0][1]
    test_tree = _parses("\n".join(tests))
    needed = _names(test_tree)[1] if test_tree is not None else set().union(
        *(_names(tree)[1] for test in tests if (tree := _parses(test)) is not None))
    complete = [block for block in parsed if needed and needed <= _names(block[2])[0]]
    if complete:
        chosen = [complete[0]]
    else:
        chosen, missing = [], set(needed)
        for block in parsed:
            if _names(block[2])[0] & missing:
                chosen.append(block)
                missing -= _names(block[2])[0]
        if not chosen:  # what the tests call is only in code that does not parse (or nowhere)
            return python[0][1] if needed else parsed[0][1]
    chosen.sort(key=lambda block: block[0])
    code = "\n".join(block[1] for block in chosen)
    helpers: list[tuple[int, int, str]] = []  # (block start, line, source) of statements from other blocks
    while True:
        defined, used = _names(ast.parse(code))
        missing = used - defined
        found = next(((start, statement, source) for start, source, tree in parsed if (start, source, tree) not in chosen
                      for statement in _binding_statements(tree, missing)), None)
        if found is None:
            break
        start, statement, source = found
        helpers.append((start, statement.lineno, ast.get_source_segment(source, statement)))
        code = "\n".join(text for _, _, text in sorted(helpers)) + "\n\n" + "\n".join(block[1] for block in chosen)
    return code


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
    """Scores responses by running their program in the sandbox, ``num_workers`` runs at a time.

    Raises ``SandboxUnavailable`` when bubblewrap cannot run here, unless ``allow_unconfined_code``
    (then model code runs with the sandbox's fallback layers only: see ``rewards.sandbox``)."""

    def __init__(self, limits: SandboxLimits = SandboxLimits(), num_workers: int | None = None,
                 allow_unconfined_code: bool = False):
        self.limits = limits
        self.num_workers = num_workers or os.cpu_count() or 1
        self.allow_unconfined_code = allow_unconfined_code
        print(describe_isolation(limits), file=sys.stderr)
        check = run_program("answer = 42", ["assert answer == 42"], limits, allow_unconfined=allow_unconfined_code)
        if check.score != 1.0:
            raise RuntimeError(f"The sandbox fails a trivial program ({check.results}, {check.error}); "
                               f"the unit-test scorer cannot run on this machine.")

    def score(self, instructions: list[dict], responses: list[str]) -> list[dict]:
        """One record per response: prediction, results, passed, score, error."""
        tests = [instruction_tests(instruction) for instruction in instructions]
        programs = [extract_program(response, test) for response, test in zip(responses, tests)]
        with ThreadPoolExecutor(self.num_workers) as pool:
            runs = list(pool.map(lambda job: run_program(*job, self.limits, allow_unconfined=self.allow_unconfined_code),
                                 zip(programs, tests)))
        return [{"prediction": program, "results": run.results, "passed": run.passed, "score": run.score,
                 "error": run.error} for program, run in zip(programs, runs)]

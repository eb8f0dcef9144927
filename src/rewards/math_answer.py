"""The ``math_answer`` scorer: the response's final answer against the reference answer, score 1 or 0.

Extraction (ours): the content of the last ``\\boxed{...}`` (nested braces allowed; ``\\fbox`` too), else the last
number in the response, after LaTeX thousands separators between digit groups (``9{,}500``, ``9\\,500``) are read
as commas, so ``$9{,}500$`` is 9500.

Equivalence: Hugging Face's ``math-verify`` (PyPI ``math-verify``, offline) parses the extracted answer and the
reference as LaTeX and compares them symbolically and numerically: ``-\\frac 12`` = ``-\\frac{1}{2}``,
``1/\\sqrt2`` = ``\\sqrt2/2``, ``\\pi/2`` = ``\\frac{\\pi}{2}``, ``3\\sqrt2`` = ``\\sqrt{18}``,
``\\text{(A)}`` = ``A``, sets in any order. When it does not find them equal (or cannot parse one), our normalised
comparison decides: dollar signs and math delimiters, ``\\left``/``\\right``, spacing commands, a unit in
``\\text{...}`` after a number, ``\\text{...}`` wrappers, degrees and percent signs, ``\\dfrac``/``\\tfrac``,
``\\frac12``, a leading ``x =`` and a final period are removed; values that read as numbers (thousands separators,
trailing zeros, ``\\frac{a}{b}``, ``a/b``, decimals) compare exactly as rationals; tuples and lists compare element
by element; anything else as normalised text.

math-verify bounds each parse and comparison with a timeout (``MATH_VERIFY_TIMEOUT_S``) through ``SIGALRM``, which
only the main thread can set: on the main thread (compute_rewards scores there; so does any worker process) the
timeouts are on; called from another thread, the check runs with them off, unbounded.

The reference is the instruction's ``answer`` field (``expected_answer``, OpenMathInstruct-2's name,
is read too).
"""
from __future__ import annotations

import re
import threading
from fractions import Fraction

from math_verify import parse as math_verify_parse
from math_verify import verify as math_verify

from utils.io import DataError

MATH_VERIFY_TIMEOUT_S = 5
BOXED = re.compile(r"\\(?:boxed|fbox)\s*")
LATEX_THOUSANDS = re.compile(r"(?<=\d)(?:\{,\}|\\,|\\!|\\ )(?=\d{3}(?!\d))")
LAST_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?|-?\.\d+")
THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
DECIMAL = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")
FRACTION = re.compile(r"(-?)\\frac\{([^{}]+)\}\{([^{}]+)\}")
SLASH_FRACTION = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+))/([-+]?(?:\d+\.?\d*|\.\d+))")
UNIT_AFTER_NUMBER = re.compile(r"(\d)\s*\\(?:text|textrm|mathrm|mbox)\{\s*[a-zA-Z][a-zA-Z .]*\}$")
WRAPPERS = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\{([^{}]*)\}")
REMOVED = ("\\left", "\\right", "\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\ ", "\\$", "$",
           "^{\\circ}", "^\\circ", "\\circ", "°", "\\%", "%")
BRACKETS = {"(": ")", "[": "]", "\\{": "\\}"}


def _braced(text: str, start: int) -> str | None:
    """The content of the brace group opening at ``text[start]``, nested braces included."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\boxed 5``) in ``text``, None when there is none."""
    for match in reversed(list(BOXED.finditer(text))):
        if match.end() < len(text) and text[match.end()] == "{":
            content = _braced(text, match.end())
            if content is not None:
                return content
        else:
            bare = re.match(r"[^\s$]+", text[match.end():])
            if bare:
                return bare.group(0)
    return None


def extract_answer(response: str) -> str | None:
    """The final answer of ``response``: the last boxed content, else the last number (LaTeX thousands separators
    read as commas)."""
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed
    numbers = LAST_NUMBER.findall(LATEX_THOUSANDS.sub(",", response))
    return numbers[-1] if numbers else None


def normalize(answer: str) -> str:
    """Answer text without formatting that does not change its value (see the module docstring)."""
    text = UNIT_AFTER_NUMBER.sub(r"\1", answer.strip())  # "5\text{ cm}" -> "5"
    while True:
        unwrapped = WRAPPERS.sub(r"\1", text)
        if unwrapped == text:
            break
        text = unwrapped
    for token in REMOVED:
        text = text.replace(token, "")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("{,}", ",")
    text = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\sqrt(\d+)", r"\\sqrt{\1}", text)
    text = re.sub(r"\s+", "", text).rstrip(".")
    text = re.sub(r"^[a-zA-Z]\w*=(?=[^=]+$)", "", text)  # "x=5" -> "5"
    return text


def as_number(text: str) -> Fraction | None:
    """The exact value of a normalised answer that is a number, else None."""
    if THOUSANDS.fullmatch(text):
        text = text.replace(",", "")
    if DECIMAL.fullmatch(text):
        return Fraction(text)
    for pattern in (FRACTION, SLASH_FRACTION):
        match = pattern.fullmatch(text)
        if match:
            sign, numerator, denominator = match.groups() if pattern is FRACTION else ("", *match.groups())
            top, bottom = as_number(numerator), as_number(denominator)
            if top is None or not bottom:
                return None
            return (-1 if sign else 1) * top / bottom
    return None


def _elements(text: str) -> list[str] | None:
    """The comma-separated elements of a tuple, list or set (brackets optional), else None."""
    for opening, closing in BRACKETS.items():
        if text.startswith(opening) and text.endswith(closing):
            text = text[len(opening):-len(closing)]
            break
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts if len(parts) > 1 else None


def _same(prediction: str, reference: str) -> bool:
    if prediction == reference:
        return True
    predicted_value, reference_value = as_number(prediction), as_number(reference)
    if predicted_value is not None and reference_value is not None:
        return predicted_value == reference_value
    predicted_parts, reference_parts = _elements(prediction), _elements(reference)
    if predicted_parts and reference_parts and len(predicted_parts) == len(reference_parts):
        return all(_same(p, r) for p, r in zip(predicted_parts, reference_parts))
    return False


def math_verify_equal(prediction: str, reference: str) -> bool:
    """Whether math-verify parses both answers (read as inline LaTeX) and finds them equal; its timeouts are on only
    on the main thread (see the module docstring)."""
    timeout = MATH_VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    gold = math_verify_parse(f"${reference.strip().strip('$')}$", parsing_timeout=timeout)
    target = math_verify_parse(f"${prediction.strip().strip('$')}$", parsing_timeout=timeout)
    return bool(gold) and bool(target) and math_verify(gold, target, timeout_seconds=timeout)


def answers_match(prediction: str | None, reference: str) -> bool:
    """Whether the extracted ``prediction`` states the ``reference`` answer: math-verify's equivalence, else our
    normalised comparison."""
    if prediction is None:
        return False
    return math_verify_equal(prediction, reference) or _same(normalize(prediction), normalize(reference))


def reference_of(instruction: dict) -> str:
    for field in ("answer", "expected_answer"):
        if instruction.get(field) is not None:
            return str(instruction[field])
    raise DataError(f"prompt_id {instruction.get('prompt_id')!r}: no reference answer (field 'answer'). Add an "
                    f"'answer' field (or 'expected_answer') to every instruction scored with math_answer.")


class MathAnswerScorer:
    """Score 1.0 when the response's final answer matches the reference, else 0.0."""

    def score(self, instructions: list[dict], responses: list[str]) -> list[dict]:
        records = []
        for instruction, response in zip(instructions, responses):
            reference = reference_of(instruction)
            prediction = extract_answer(response)
            correct = answers_match(prediction, reference)
            records.append({"prediction": prediction, "reference": reference, "score": float(correct)})
        return records

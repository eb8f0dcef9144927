"""The ``math_answer`` scorer: the response's final answer against the reference answer, score 1 or 0.

The final answer is the content of the last ``\\boxed{...}`` (nested braces allowed; ``\\fbox`` too),
else the last number in the response. Both sides are normalised before comparing: dollar signs and
math delimiters, ``\\left``/``\\right``, spacing commands, a unit in ``\\text{...}`` after a number,
``\\text{...}`` wrappers, degrees and
percent signs, ``\\dfrac``/``\\tfrac``, ``\\frac12``, a leading ``x =``, a final period. Values that
read as numbers (thousands separators, trailing zeros, ``\\frac{a}{b}``, ``a/b``, decimals) compare
exactly as rationals; tuples and lists compare element by element; anything else as normalised text.

The reference is the instruction's ``answer`` field (``expected_answer``, OpenMathInstruct-2's name,
is read too).
"""
from __future__ import annotations

import re
from fractions import Fraction

from utils.io import DataError

BOXED = re.compile(r"\\(?:boxed|fbox)\s*")
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
    """The final answer of ``response``: the last boxed content, else the last number."""
    boxed = last_boxed(response)
    if boxed is not None:
        return boxed
    numbers = LAST_NUMBER.findall(response)
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


def answers_match(prediction: str | None, reference: str) -> bool:
    """Whether the extracted ``prediction`` states the ``reference`` answer."""
    if prediction is None:
        return False
    return _same(normalize(prediction), normalize(reference))


def reference_of(instruction: dict) -> str:
    for field in ("answer", "expected_answer"):
        if instruction.get(field) is not None:
            return str(instruction[field])
    raise DataError(f"instructions, prompt_id {instruction.get('prompt_id')!r}: no reference answer. Add an "
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

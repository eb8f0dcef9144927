"""The math_answer scorer: answer extraction and normalisation on hand-written cases."""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from rewards import math_answer
from rewards.math_answer import (MathAnswerScorer, answers_match, as_number, extract_answer, last_boxed,
                                 normalize)
from utils.io import DataError
from fractions import Fraction

EXTRACTION = [
    ("So the answer is $\\boxed{42}$.", "42"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("nested: \\boxed{\\frac{\\sqrt{3}}{2}} done", "\\frac{\\sqrt{3}}{2}"),
    ("first \\boxed{1}, then corrected: \\boxed{2}", "2"),
    ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
    ("\\boxed 7 apples", "7"),
    ("\\fbox{x+1}", "x+1"),
    ("We get 12 eggs, 3 break, so 9 remain.", "9"),
    ("The total is 1,234.50 dollars", "1,234.50"),
    ("The ratio is 3/4.", "3/4"),
    ("It drops to -5.", "-5"),
    ("about .75 of it", ".75"),
    ("no number here", None),
    ("unclosed \\boxed{12 and then 13", "13"),
]


@pytest.mark.parametrize("response, expected", EXTRACTION)
def test_extract_answer(response, expected):
    assert extract_answer(response) == expected


MATCHES = [
    # numbers: separators, trailing zeros, signs, currency, percent
    ("1,000", "1000", True),
    ("1{,}000", "1000", True),
    ("3.50", "3.5", True),
    ("2.0", "2", True),
    ("\\$5.00", "5", True),
    ("$12$", "12", True),
    ("50\\%", "50", True),
    ("50%", "50", True),
    ("-3", "-3.0", True),
    (".5", "0.5", True),
    ("7", "8", False),
    ("0.333", "\\frac{1}{3}", False),
    # fractions
    ("\\frac{1}{2}", "0.5", True),
    ("\\dfrac{3}{4}", "3/4", True),
    ("\\tfrac{6}{8}", "0.75", True),
    ("\\frac12", "\\frac{1}{2}", True),
    ("-\\frac{2}{4}", "-0.5", True),
    ("\\frac{-1}{2}", "-1/2", True),
    ("1/3", "2/6", True),
    ("\\frac{1}{0}", "0", False),
    # LaTeX formatting
    ("\\left( 1, 2 \\right)", "(1,2)", True),
    ("\\text{(B)}", "(B)", True),
    ("90^\\circ", "90", True),
    ("90^{\\circ}", "90", True),
    ("5\\text{ cm}", "5", True),
    ("\\sqrt2", "\\sqrt{2}", True),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}", True),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{2}}{2}", False),
    ("x = 5", "5", True),
    ("y=2x+1", "2x+1", True),
    ("3 \\, 000", "3000", True),
    ("\\displaystyle\\frac{1}{4}", "0.25", True),
    ("42.", "42", True),
    # tuples and sets compare element by element
    ("(0.5, 1)", "(\\frac{1}{2}, 1)", True),
    ("(1, 2)", "(2, 1)", False),
    ("\\{1, 2, 3\\}", "\\{1,2,3\\}", True),
    ("1, 2", "1, 2, 3", False),
    # text answers
    ("\\text{Monday}", "Monday", True),
    ("x^2 + 1", "x^2+1", True),
    ("x^2 + 1", "x^2+2", False),
]


@pytest.mark.parametrize("prediction, reference, expected", MATCHES)
def test_answers_match(prediction, reference, expected):
    assert answers_match(prediction, reference) is expected


def test_a_missing_answer_never_matches():
    assert answers_match(None, "0") is False


def test_normalize_and_as_number():
    assert normalize(" \\left[ 1 ,2 \\right] .") == "[1,2]"
    assert as_number("1,234.50") == Fraction(2469, 2)
    assert as_number("\\frac{3}{4}") == Fraction(3, 4)
    assert as_number("1,2") is None
    assert as_number("abc") is None


def test_last_boxed_handles_deep_nesting():
    assert last_boxed("\\boxed{a{b{c}}d}") == "a{b{c}}d"
    assert last_boxed("nothing") is None


def test_scorer_records_prediction_reference_and_score():
    scorer = MathAnswerScorer()
    records = scorer.score([{"prompt_id": "a", "prompt": "p", "answer": "0.5"},
                            {"prompt_id": "b", "prompt": "p", "expected_answer": 12}],
                           ["so \\boxed{\\dfrac{1}{2}}", "I think 11"])
    assert records == [{"prediction": "\\dfrac{1}{2}", "reference": "0.5", "score": 1.0},
                       {"prediction": "11", "reference": "12", "score": 0.0}]


def test_scorer_needs_a_reference():
    with pytest.raises(DataError, match="prompt_id 'z': no reference answer"):
        MathAnswerScorer().score([{"prompt_id": "z", "prompt": "p"}], ["1"])


# Field cases from public bug reports: each response scored against its reference, the right score by hand.
FIELD_CASES = [
    ("so \\boxed{-\\frac 12}", "-\\frac{1}{2}", 1.0),          # a space inside \frac
    ("The total is $9{,}500$.", "9500", 1.0),                 # LaTeX thousands separator, unboxed
    ("The total is $9{,}501$.", "9500", 0.0),
    ("\\boxed{1/\\sqrt2}", "\\frac{\\sqrt{2}}{2}", 1.0),
    ("\\boxed{1/\\sqrt3}", "\\frac{\\sqrt{2}}{2}", 0.0),
    ("\\boxed{\\pi/2}", "\\frac{\\pi}{2}", 1.0),
    ("\\boxed{\\pi/3}", "\\frac{\\pi}{2}", 0.0),
    ("\\boxed{3\\sqrt2}", "\\sqrt{18}", 1.0),
    ("\\boxed{3\\sqrt3}", "\\sqrt{18}", 0.0),
    ("The answer is \\boxed{\\text{(A)}}", "A", 1.0),
    ("The answer is \\boxed{\\text{(B)}}", "A", 0.0),
    ("\\boxed{\\{3, 1, 2\\}}", "\\{1,2,3\\}", 1.0),            # set equality, any order
    ("\\boxed{\\{1, 2\\}}", "\\{1,2,3\\}", 0.0),
]


def field_instructions():
    return [{"prompt_id": str(i), "prompt": "p", "answer": reference}
            for i, (_, reference, _) in enumerate(FIELD_CASES)]


def test_field_cases_score_as_a_grader_would():
    records = MathAnswerScorer().score(field_instructions(), [response for response, _, _ in FIELD_CASES])
    assert [(r["prediction"], r["score"]) for r in records] == [
        ("-\\frac 12", 1.0), ("9,500", 1.0), ("9,501", 0.0), ("1/\\sqrt2", 1.0), ("1/\\sqrt3", 0.0), ("\\pi/2", 1.0),
        ("\\pi/3", 0.0), ("3\\sqrt2", 1.0), ("3\\sqrt3", 0.0), ("\\text{(A)}", 1.0), ("\\text{(B)}", 0.0),
        ("\\{3, 1, 2\\}", 1.0), ("\\{1, 2\\}", 0.0)]
    assert [r["score"] for r in records] == [score for _, _, score in FIELD_CASES]


def test_scoring_from_worker_threads_gives_the_same_scores():
    # math-verify's timeouts use SIGALRM, which only the main thread may set; a worker thread runs without them
    responses = [response for response, _, _ in FIELD_CASES]
    with ThreadPoolExecutor(2) as pool:
        chunks = list(pool.map(lambda i: MathAnswerScorer().score(field_instructions()[i::2], responses[i::2]), [0, 1]))
    assert [r["score"] for r in chunks[0]] == [score for _, _, score in FIELD_CASES][0::2]
    assert [r["score"] for r in chunks[1]] == [score for _, _, score in FIELD_CASES][1::2]


def test_math_verify_timeouts_are_on_only_on_the_main_thread(monkeypatch):
    seen = []

    def parse(text, parsing_timeout):
        seen.append((threading.current_thread() is threading.main_thread(), parsing_timeout))
        return []

    monkeypatch.setattr(math_answer, "math_verify_parse", parse)
    math_answer.math_verify_equal("1", "1")
    with ThreadPoolExecutor(1) as pool:
        pool.submit(math_answer.math_verify_equal, "1", "1").result()
    assert seen == [(True, math_answer.MATH_VERIFY_TIMEOUT_S)] * 2 + [(False, None)] * 2

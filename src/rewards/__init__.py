"""Scorers that turn candidate responses into the ``score`` the routers learn from.

Every scorer has ``score(instructions, responses) -> list[dict]``: for each (instruction row,
response) the fields to record, ``score`` among them (higher is better).

    reward_model   a Hugging Face sequence-classification reward model (``reward_model.py``)
    unit_tests     the response's program run against the tests in a sandbox (``unit_tests.py``, ``sandbox.py``)
    math_answer    the final answer against the reference, 1 or 0 (``math_answer.py``)
"""
from __future__ import annotations

SCORERS = ("reward_model", "unit_tests", "math_answer")


def build_scorer(name: str, **kwargs):
    """The scorer called ``name``; ``kwargs`` go to its constructor (the heavy imports happen here)."""
    if name == "reward_model":
        from .reward_model import RewardModelScorer
        return RewardModelScorer(**kwargs)
    if name == "unit_tests":
        from .unit_tests import UnitTestScorer
        return UnitTestScorer(**kwargs)
    if name == "math_answer":
        from .math_answer import MathAnswerScorer
        return MathAnswerScorer(**kwargs)
    raise ValueError(f"scorer must be one of {SCORERS}, got {name!r}.")

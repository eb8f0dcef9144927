"""Trainer callbacks of the router trainers: the training log and progress lines with the time left.

Both write to the ``lookahead`` logger (``src/train.py`` sends it to stderr and ``<output_dir>/train.log``).
"""
from __future__ import annotations

import json
import logging
import time

from transformers import TrainerCallback
from transformers.trainer_utils import has_length

logger = logging.getLogger("lookahead")


def duration(seconds: float) -> str:
    """``seconds`` as ``1h02m``, ``3m05s`` or ``42s``."""
    seconds = max(0, int(round(seconds)))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class LogToFile(TrainerCallback):
    """Send the Trainer's log dictionaries (loss, eval_reward, ...) to the ``lookahead`` logger."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            logger.info("step %d: %s", state.global_step, json.dumps(logs))


class ProgressLog(TrainerCallback):
    """A ``progress:`` line at most every ``interval`` seconds (and at the end of a phase that took longer):
    training steps done, elapsed time and the estimated time left; the same per batch for each evaluation and
    routing pass, named by ``label`` (the trainer sets it before a pass; "validation" otherwise).

    The estimate is the mean time per step (batch) so far times the steps left."""

    def __init__(self, interval: float = 10.0):
        self.interval = interval
        self.label = None
        self._train = None       # (start time, first step) of the training phase
        self._pass = None        # [start time, batches done, total batches, label] of an evaluation/routing pass
        self._last = 0.0

    def _due(self, now: float) -> bool:
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False

    def on_train_begin(self, args, state, control, **kwargs):
        self._train = (time.monotonic(), state.global_step)
        self._last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero or self._train is None:
            return
        now = time.monotonic()
        last_step = state.global_step >= state.max_steps
        if not (self._due(now) or last_step):
            return
        started, first_step = self._train
        done, elapsed = state.global_step - first_step, now - started
        left = elapsed / done * (state.max_steps - state.global_step) if done else float("nan")
        logger.info("progress: training step %d/%d (%.0f%%), %s elapsed, ~%s left", state.global_step,
                    state.max_steps, 100 * state.global_step / max(1, state.max_steps), duration(elapsed),
                    duration(left) if done else "?")

    def on_train_end(self, args, state, control, **kwargs):
        self._train = None

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if not state.is_world_process_zero:
            return
        now = time.monotonic()
        if self._pass is None:
            total = len(eval_dataloader) if has_length(eval_dataloader) else 0
            self._pass = [now, 0, total, self.label or "validation"]
            self._last = now  # the pass's first line comes after ``interval`` seconds of it
        self._pass[1] += 1
        started, done, total, label = self._pass
        if total and done < total and self._due(now):
            elapsed = now - started
            logger.info("progress: %s batch %d/%d (%.0f%%), %s elapsed, ~%s left", label, done, total,
                        100 * done / total, duration(elapsed), duration(elapsed / done * (total - done)))

    def _end_pass(self, state) -> None:
        if self._pass is not None and state.is_world_process_zero:
            started, done, _, label = self._pass
            elapsed = time.monotonic() - started
            if elapsed >= self.interval:
                logger.info("progress: %s done (%d batches) in %s", label, done, duration(elapsed))
        self._pass, self.label = None, None

    def on_evaluate(self, args, state, control, **kwargs):
        self._end_pass(state)

    def on_predict(self, args, state, control, **kwargs):
        self._end_pass(state)

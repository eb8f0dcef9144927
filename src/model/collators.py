"""Token layouts of the four router stages.

Each collator tokenises records once (``encode`` -> one feature dict per query) and lays a batch of
features out as a packed batch (``__call__``; ``model.packing``): every query becomes one document (k for
gt_responses), documents are laid back to back in rows, and attention never crosses from one document to
another. A feature holds

    prompt_ids     the prompt as the backbone reads it: the chat template's user turn (with the generation
                   prompt) when the tokenizer has a template, else [CLS] prompt [SEP] for encoders, else
                   BOS prompt; the prompt text itself is cut to fit ``max_length`` (its start kept; see
                   ``RoutingCollator``)
    response_ids   k token lists, already cut and closed the way the stage uses them (training features,
                   and always for gt_responses)
    scores         k normalised scores (when the records are scored)

A feature without ``response_ids`` is laid out for routing (nothing about the responses is read).
``assign_rows`` decides how documents share rows (``model.packing.row_assignment`` of the backbone's
attention kernel: one row for FlexAttention / flash-attention, rows as long as the longest document for
dense attention); row ends are padded with the tokenizer's pad token (document -1).
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from model.packing import IGNORE_INDEX, Document, first_fit_rows, pack

PLACEHOLDER = "\ue000PROMPT\ue000"  # a private-use character pair, never produced by chat templates


def prompt_frame(tokenizer) -> tuple[list[int], list[int]]:
    """Token ids placed before and after the prompt text (see the module docstring)."""
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template([{"role": "user", "content": PLACEHOLDER}], tokenize=False,
                                             add_generation_prompt=True)
        before, after = text.split(PLACEHOLDER)
        return (tokenizer(before, add_special_tokens=False)["input_ids"],
                tokenizer(after, add_special_tokens=False)["input_ids"])
    if tokenizer.cls_token_id is not None and tokenizer.sep_token_id is not None:
        return [tokenizer.cls_token_id], [tokenizer.sep_token_id]
    return ([tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []), []


class RoutingCollator:
    """Shared tokenisation and packing; subclasses define the layout (``__call__``), how many prompt tokens fit
    (``prompt_budget``) and, for stages that read responses, how many response tokens follow a prompt
    (``response_budget``), and may close responses (``close_response``).

    Lengths: ``max_length`` bounds the longest sequence the stage builds (the prompt with its frame plus what
    follows it; for the prefix-shared causal layout, each ``prompt <id_i> response_i <eos>``), and
    ``max_positions`` (the backbone's position limit, when it has one) bounds the largest position id. Prompts
    are cut to fit both (and to ``max_prompt_length`` where the stage has one), keeping their start; responses
    then take what is left, cut on ``response_truncation_side``. ``self.max_prompt_length`` is the resulting
    number of prompt tokens kept."""

    def __init__(self, tokenizer, num_candidates: int, max_length: int, max_positions: int | None = None,
                 max_prompt_length: int | None = None, response_truncation_side: str = "right",
                 assign_rows: Callable[[list[int]], list[list[int]]] = first_fit_rows):
        if response_truncation_side not in ("right", "left"):
            raise ValueError(f"response_truncation_side must be 'right' or 'left', not {response_truncation_side!r}.")
        self.tokenizer = tokenizer
        self.num_candidates = num_candidates
        self.max_length = max_length if max_positions is None else min(max_length, max_positions)
        self.response_truncation_side = response_truncation_side
        self.assign_rows = assign_rows
        self.prompt_prefix, self.prompt_suffix = prompt_frame(tokenizer)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is None:
            raise ValueError("The tokenizer has neither a pad nor an EOS token; set tokenizer.pad_token.")
        self.pad_token_id = pad
        self.requested_prompt_length = max_prompt_length

    def setup_lengths(self) -> None:
        """Compute ``max_prompt_length`` (called at the end of each subclass's ``__init__``)."""
        budget = self.prompt_budget()
        if self.requested_prompt_length is not None:
            budget = min(budget, self.requested_prompt_length)
        if budget < 1:
            raise ValueError(f"--max_length {self.max_length} leaves no room for the prompt in this stage's layout "
                             f"({self.frame_length()} frame tokens plus what follows the prompt); raise --max_length "
                             f"(or lower --mask_length).")
        self.max_prompt_length = budget

    def frame_length(self) -> int:
        """Tokens around the prompt text (template or [CLS]/[SEP])."""
        return len(self.prompt_prefix) + len(self.prompt_suffix)

    def prompt_budget(self) -> int:
        """The most prompt-text tokens the layout fits into ``max_length``."""
        raise NotImplementedError

    def response_budget(self, prompt_tokens: int) -> int:
        """Response tokens kept after a prompt of ``prompt_tokens`` tokens (frame included)."""
        return 0

    def close_response(self, ids: list[int]) -> list[int]:
        """A tokenised (already cut) response as this stage reads it; subclasses append their closing token."""
        return ids

    def max_position(self) -> int:
        """The largest position id a feature can reach (checked against the backbone's limit)."""
        return self.max_length - 1

    def tokenize(self, texts: list[str], max_length: int | None = None, side: str = "right") -> list[list[int]]:
        """Token ids of ``texts`` (no special tokens), cut to ``max_length`` keeping the start (side "right")
        or the end ("left"); tokenised in chunks to bound memory on long responses."""
        tokenizer, saved_side = self.tokenizer, self.tokenizer.truncation_side
        tokenizer.truncation_side = side
        try:
            ids = []
            for start in range(0, len(texts), 512):
                ids += tokenizer(texts[start:start + 512], add_special_tokens=False, truncation=max_length is not None,
                                 max_length=max_length)["input_ids"]
            return ids
        finally:
            tokenizer.truncation_side = saved_side

    def cut_response(self, ids: list[int], budget: int) -> list[int]:
        if len(ids) <= budget:
            return ids
        if budget <= 0:
            return []
        return ids[:budget] if self.response_truncation_side == "right" else ids[-budget:]

    def encode(self, records: list[dict], scores: list[list[float]] | None = None,
               with_responses: bool = False) -> list[dict]:
        """One feature per record; ``scores`` (optional) are the records' normalised scores."""
        prompts = self.tokenize([r["prompt"] for r in records], self.max_prompt_length)
        features = [{"prompt_ids": self.prompt_prefix + ids + self.prompt_suffix} for ids in prompts]
        if with_responses:
            k = self.num_candidates
            bad = next((r for r in records if len(r["responses"]) != k), None)
            if bad is not None:
                raise ValueError(f"record {bad.get('prompt_id')!r} ({bad.get('source')}) has "
                                 f"{len(bad['responses'])} responses; the router has {k} candidates.")
            longest = self.response_budget(self.frame_length())
            responses = self.tokenize([response or "" for r in records for response in r["responses"]],
                                      longest, self.response_truncation_side)
            for n, feature in enumerate(features):
                budget = self.response_budget(len(feature["prompt_ids"]))
                feature["response_ids"] = [self.close_response(self.cut_response(ids, budget))
                                           for ids in responses[n * k:(n + 1) * k]]
        if scores is not None:
            for feature, row in zip(features, scores):
                feature["scores"] = list(row)
        return features

    def pack(self, documents: list[Document]) -> tuple[dict[str, torch.Tensor], list[int]]:
        """The packed batch of ``documents`` and the flat index of each one's first token."""
        return pack(documents, self.assign_rows([len(document) for document in documents]), self.pad_token_id)

    def _add_scores(self, batch: dict, features: list[dict]) -> dict:
        if "scores" in features[0]:
            batch["scores"] = torch.tensor([f["scores"] for f in features], dtype=torch.float32)
        return batch


class MaskConcatCollator(RoutingCollator):
    """One document per query: ``[CLS] prompt [SEP]`` then, for each candidate i, ``mask_length`` slots and
    ``[SEP]``; every block's positions restart right after the prompt.

    Routing features: every slot holds candidate i's mask token. Training features: the slots hold
    candidate i's response cut to ``mask_length`` tokens (on ``response_truncation_side``), then [PAD]
    up to ``mask_length``; padded slots are attended like the rest of the block and are part of the block's
    target, so when they are masked the MLM head predicts [PAD] (it learns where a short response ends) and
    a fully masked training block reads exactly like a routing block. The trainer replaces part of the
    slots by the mask token; it finds them through ``slot_positions [B, k, mask_length]`` (flat index of
    each slot in the [rows x width] grid).

    ``actual_responses`` (Lookahead-MLM's ceiling, ``foresight="actual"``): every feature, at routing time too,
    carries the responses; a block holds candidate i's response cut to ``mask_length - 1`` tokens, [PAD] up to
    that, then candidate i's mask token (which names the block's candidate), and there are no ``slot_positions``
    (nothing is masked).
    """

    def __init__(self, tokenizer, num_candidates: int, max_length: int, mask_token_ids: list[int],
                 mask_length: int, max_positions: int | None = None, response_truncation_side: str = "right",
                 assign_rows: Callable[[list[int]], list[list[int]]] = first_fit_rows, actual_responses: bool = False):
        super().__init__(tokenizer, num_candidates, max_length, None, None, response_truncation_side, assign_rows)
        if actual_responses and mask_length < 2:
            raise ValueError("foresight 'actual' needs --mask_length >= 2 (response tokens and the candidate's mask "
                             f"token), got {mask_length}.")
        self.actual_responses = actual_responses
        if self.prompt_prefix != [tokenizer.cls_token_id] or self.prompt_suffix != [tokenizer.sep_token_id]:
            raise ValueError("mask_concat needs an encoder tokenizer with [CLS] and [SEP] tokens and no chat "
                             "template (a BERT-family or ModernBERT backbone).")
        self.mask_token_ids = list(mask_token_ids)
        self.mask_length = mask_length
        self.sep_token_id = tokenizer.sep_token_id
        self.max_positions = max_positions if max_positions is not None else max_length
        self.setup_lengths()

    def prompt_budget(self) -> int:
        """The document is [CLS] prompt [SEP] + k blocks of (mask_length slots + [SEP]); every block's positions
        restart after the prompt, so the largest position is frame + prompt + mask_length."""
        blocks = self.num_candidates * (self.mask_length + 1)
        return min(self.max_length - self.frame_length() - blocks,
                   self.max_positions - 1 - self.frame_length() - self.mask_length)

    def response_budget(self, prompt_tokens: int) -> int:
        return self.mask_length - 1 if self.actual_responses else self.mask_length

    def max_position(self) -> int:
        return self.frame_length() + self.max_prompt_length + self.mask_length

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        width = self.mask_length
        if self.actual_responses and "response_ids" not in features[0]:
            raise ValueError("This Lookahead-MLM reads the candidates' actual responses (foresight 'actual', a "
                             "ceiling): encode the records with_responses=True.")
        documents, slot_offsets = [], []
        for feature in features:
            ids = list(feature["prompt_ids"])
            start = len(ids)
            position = list(range(start))
            slots = []
            for i in range(self.num_candidates):
                if self.actual_responses:
                    response = feature["response_ids"][i]
                    block = response + [self.pad_token_id] * (width - 1 - len(response)) + [self.mask_token_ids[i]]
                elif "response_ids" in feature:
                    response = feature["response_ids"][i]
                    block = response + [self.pad_token_id] * (width - len(response))
                else:
                    block = [self.mask_token_ids[i]] * width
                slots.append(list(range(len(ids), len(ids) + width)))
                ids += block + [self.sep_token_id]
                position += range(start, start + width + 1)
            documents.append(Document(ids, position))
            slot_offsets.append(slots)
        batch, starts = self.pack(documents)
        if "response_ids" in features[0] and not self.actual_responses:
            batch["slot_positions"] = torch.tensor(starts)[:, None, None] + torch.tensor(slot_offsets)
        return self._add_scores(batch, features)


class ClosedResponseCollator(RoutingCollator):
    """Layouts where each response follows the prompt (after ``tokens_around_response - 1`` tokens of its own, e.g.
    a model-ID token) and is closed by ``self.response_end``: each such sequence fits ``max_length`` with at least
    an empty response, and the response takes what the prompt leaves."""

    tokens_around_response = 1
    response_end: int

    def prompt_budget(self) -> int:
        return self.max_length - self.frame_length() - self.tokens_around_response

    def response_budget(self, prompt_tokens: int) -> int:
        return self.max_length - prompt_tokens - self.tokens_around_response

    def close_response(self, ids: list[int]) -> list[int]:
        return ids + [self.response_end]


class CausalCollator(ClosedResponseCollator):
    """One prefix-shared document per query (``model.lookahead_clm``): the prompt (block 0), then block i =
    ``<id_i>`` for routing, ``<id_i> response_i <eos>`` in training, with ``labels`` = the response tokens and
    EOS (-100 elsewhere). Every block's positions continue from the prompt's. ``model_id_positions [B*k]``
    are the flat indices (row x width + column) of the model-ID tokens, query-major."""

    tokens_around_response = 2  # <id_i> and <eos>

    def __init__(self, tokenizer, num_candidates: int, max_length: int, max_prompt_length: int,
                 model_id_token_ids: list[int], max_positions: int | None = None,
                 response_truncation_side: str = "right",
                 assign_rows: Callable[[list[int]], list[list[int]]] = first_fit_rows):
        super().__init__(tokenizer, num_candidates, max_length, max_positions, max_prompt_length,
                         response_truncation_side, assign_rows)
        if tokenizer.eos_token_id is None:
            raise ValueError("The causal stage needs a tokenizer with an EOS token to close each response.")
        self.model_id_token_ids = list(model_id_token_ids)
        self.response_end = tokenizer.eos_token_id
        self.setup_lengths()

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        documents, id_offsets = [], []
        training = "response_ids" in features[0]
        for feature in features:
            prompt = feature["prompt_ids"]
            ids, positions, blocks = list(prompt), list(range(len(prompt))), [0] * len(prompt)
            labels = [IGNORE_INDEX] * len(prompt)
            for i in range(self.num_candidates):
                response = feature["response_ids"][i] if training else []
                id_offsets.append((len(documents), len(ids)))
                ids += [self.model_id_token_ids[i]] + response
                positions += range(len(prompt), len(prompt) + 1 + len(response))
                blocks += [i + 1] * (1 + len(response))
                labels += [IGNORE_INDEX] + response
            documents.append(Document(ids, positions, blocks, labels if training else None))
        batch, starts = self.pack(documents)
        batch["model_id_positions"] = torch.tensor([starts[document] + offset for document, offset in id_offsets])
        return self._add_scores(batch, features)


class PromptCollator(RoutingCollator):
    """One document per query: the prompt alone (stage sc)."""

    def __init__(self, tokenizer, num_candidates: int, max_length: int, max_positions: int | None = None,
                 assign_rows: Callable[[list[int]], list[list[int]]] = first_fit_rows):
        super().__init__(tokenizer, num_candidates, max_length, max_positions, assign_rows=assign_rows)
        self.setup_lengths()

    def prompt_budget(self) -> int:
        return self.max_length - self.frame_length()

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        documents = [Document(f["prompt_ids"], list(range(len(f["prompt_ids"])))) for f in features]
        return self._add_scores(self.pack(documents)[0], features)


class ResponseCollator(ClosedResponseCollator):
    """k documents per query (query-major): the prompt followed by candidate i's response, cut to
    what ``max_length`` leaves after the prompt, and closed by [SEP] (encoders) or EOS (decoders). Stage gt_responses:
    responses are read at routing time too, so every feature must carry them."""

    def __init__(self, tokenizer, num_candidates: int, max_length: int, max_prompt_length: int,
                 max_positions: int | None = None, response_truncation_side: str = "right",
                 assign_rows: Callable[[list[int]], list[list[int]]] = first_fit_rows):
        super().__init__(tokenizer, num_candidates, max_length, max_positions, max_prompt_length,
                         response_truncation_side, assign_rows)
        encoder_style = self.prompt_prefix == [tokenizer.cls_token_id] and tokenizer.sep_token_id is not None
        self.response_end = tokenizer.sep_token_id if encoder_style else tokenizer.eos_token_id
        if self.response_end is None:
            raise ValueError("gt_responses needs a tokenizer with [SEP] (encoders) or EOS (decoders).")
        self.setup_lengths()

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        if "response_ids" not in features[0]:
            raise ValueError("gt_responses reads the candidates' responses; encode the records with_responses=True.")
        sequences = [feature["prompt_ids"] + response for feature in features for response in feature["response_ids"]]
        documents = [Document(ids, list(range(len(ids)))) for ids in sequences]
        return self._add_scores(self.pack(documents)[0], features)

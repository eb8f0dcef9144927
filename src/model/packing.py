"""Packed layouts: a batch's documents laid back to back in rows, and the attention that keeps them apart.

A *document* is a run of tokens that attends only to itself: one query (stages causal, mask_concat, sc) or
one (query, candidate) pair (gt_responses). A *prefix-shared* document (causal) holds the prompt once, then
one block per candidate; a block attends to the prompt and to itself, never to another block, and its
position ids continue from the prompt, so each block reads exactly as ``prompt + block`` alone would.

A packed batch is a grid of R rows x W columns (tensors [R, W]):

    input_ids, position_ids
    document_ids    the token's document (0 .. D-1, numbered in batch order); -1 on padding
    block_ids       prefix-shared documents only: 0 on the shared prefix, i on candidate block i (1-based)
    labels          when the documents carry some (-100 where nothing is predicted)

Token q attends to token kv when both lie in the same document, kv is in the shared prefix or in q's own
block, kv is not after q (causal backbones), and |q - kv| <= window in the sliding-window layers of
encoders that have some (ModernBERT; the window is counted in columns, as in a row of its own). Padding
attends to itself alone.

How documents are laid into rows depends on the attention kernel (``row_assignment``):

* ``single_row``: every document in one row, no padding at all. For kernels that skip what a token may not
  see: FlexAttention block masks, flash-attention varlen.
* ``first_fit_rows``: rows as long as the longest document, filled first-fit in decreasing length, padded
  at the end. For dense attention (SDPA or eager with an explicit mask), whose cost grows with the square of
  the row length: a row never holds more than the longest document.
* ``one_document_per_row``: the plain padded layout. Not used for training or routing: the benchmark's
  baseline and the tests' reference.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

IGNORE_INDEX = -100
FLASH_ATTENTION = ("flash_attention_2", "flash_attention_3")
SINGLE_ROW_ATTENTION = ("flex_attention", *FLASH_ATTENTION)


@dataclass
class Document:
    """One document: its tokens, their position ids, and optionally block ids (prefix-shared) and labels."""

    input_ids: list[int]
    position_ids: list[int]
    block_ids: list[int] | None = None
    labels: list[int] | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


# ----- rows -----

def single_row(lengths: list[int]) -> list[list[int]]:
    """All documents in one row, in order."""
    return [list(range(len(lengths)))]


def first_fit_rows(lengths: list[int]) -> list[list[int]]:
    """Rows of the longest document's length; documents placed longest first into the first row with room."""
    capacity, rows, room = max(lengths), [], []
    for document in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for row, free in enumerate(room):
            if lengths[document] <= free:
                rows[row].append(document)
                room[row] -= lengths[document]
                break
        else:
            rows.append([document])
            room.append(capacity - lengths[document])
    return rows


def one_document_per_row(lengths: list[int]) -> list[list[int]]:
    """The plain padded layout (benchmark baseline and test reference)."""
    return [[document] for document in range(len(lengths))]


def row_assignment(attn_implementation: str | None) -> Callable[[list[int]], list[list[int]]]:
    """``single_row`` for kernels that skip masked blocks (flex, flash varlen), else ``first_fit_rows``."""
    return single_row if attn_implementation in SINGLE_ROW_ATTENTION else first_fit_rows


def pack(documents: list[Document], rows: list[list[int]], pad_token_id: int) -> tuple[dict[str, torch.Tensor],
                                                                                      list[int]]:
    """The batch tensors of ``documents`` laid out as ``rows`` (lists of document indices), and the flat index
    (row x width + column) of each document's first token."""
    width = max(sum(len(documents[i]) for i in row) for row in rows)
    shape = (len(rows), width)
    batch = {"input_ids": torch.full(shape, pad_token_id, dtype=torch.long),
             "position_ids": torch.zeros(shape, dtype=torch.long),
             "document_ids": torch.full(shape, -1, dtype=torch.long)}
    if documents[0].block_ids is not None:
        batch["block_ids"] = torch.zeros(shape, dtype=torch.long)
    if documents[0].labels is not None:
        batch["labels"] = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
    starts = [0] * len(documents)
    for row, members in enumerate(rows):
        column = 0
        for index in members:
            document = documents[index]
            span = slice(column, column + len(document))
            batch["input_ids"][row, span] = torch.tensor(document.input_ids)
            batch["position_ids"][row, span] = torch.tensor(document.position_ids)
            batch["document_ids"][row, span] = index
            if "block_ids" in batch:
                batch["block_ids"][row, span] = torch.tensor(document.block_ids)
            if "labels" in batch:
                batch["labels"][row, span] = torch.tensor(document.labels)
            starts[index] = row * width + column
            column += len(document)
    return batch, starts


def document_bounds(document_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices (row x width + column) of the first and the last token of documents 0 .. D-1."""
    flat = document_ids.flatten()
    real = flat >= 0
    index = torch.arange(flat.numel(), device=flat.device)[real]
    documents = flat[real]
    count = int(documents.max()) + 1
    first = flat.new_full((count,), flat.numel()).scatter_reduce(0, documents, index, "amin")  # on flat's device
    last = flat.new_full((count,), -1).scatter_reduce(0, documents, index, "amax")
    return first, last


# ----- attention -----

def visible(q_document, kv_document, q_block, kv_block, q_index, kv_index, causal: bool, window: int | None):
    """The visibility rule (module docstring) on broadcastable tensors: dense masks and FlexAttention's mask_mod
    both call it, so the two cannot disagree. ``q_block``/``kv_block`` are None when nothing is prefix-shared."""
    allowed = (q_document == kv_document) & (q_document >= 0)
    if q_block is not None:
        allowed = allowed & ((kv_block == 0) | (kv_block == q_block))
    if causal:
        allowed = allowed & (kv_index <= q_index)
    if window is not None:
        allowed = allowed & ((q_index - kv_index).abs() <= window)
    return allowed | ((q_document < 0) & (q_index == kv_index))


def dense_mask(document_ids: torch.Tensor, block_ids: torch.Tensor | None, causal: bool,
               window: int | None = None) -> torch.Tensor:
    """Boolean [R, 1, W, W]: True where the query token (dim 2) attends to the key token (dim 3)."""
    index = torch.arange(document_ids.shape[1], device=document_ids.device)
    blocks = (None, None) if block_ids is None else (block_ids[:, :, None], block_ids[:, None, :])
    allowed = visible(document_ids[:, :, None], document_ids[:, None, :], *blocks, index[:, None], index[None, :],
                      causal, window)
    return allowed[:, None]


def flex_block_mask(document_ids: torch.Tensor, block_ids: torch.Tensor | None, causal: bool,
                    window: int | None = None):
    """The same rule as a FlexAttention ``BlockMask``: blocks of 128 x 128 tokens that no query may see are
    skipped, so attention costs what the documents need, not the square of the row."""
    from torch.nn.attention.flex_attention import create_block_mask

    def mask_mod(batch, head, q_index, kv_index):
        blocks = (None, None) if block_ids is None else (block_ids[batch, q_index], block_ids[batch, kv_index])
        return visible(document_ids[batch, q_index], document_ids[batch, kv_index], *blocks, q_index, kv_index,
                       causal, window)

    rows, width = document_ids.shape
    return create_block_mask(mask_mod, rows, None, width, width, device=document_ids.device,
                             _compile=document_ids.is_cuda)


def varlen_arguments(document_ids: torch.Tensor) -> dict:
    """flash-attention varlen keywords (cumulative document lengths) for a single padding-free row."""
    if document_ids.shape[0] != 1 or bool((document_ids < 0).any()):
        raise ValueError("flash-attention varlen needs the single-row layout (packing.single_row).")
    row = document_ids[0]
    boundaries = torch.nonzero(row[1:] != row[:-1]).flatten() + 1
    edges = torch.tensor([0], device=row.device), boundaries, torch.tensor([row.numel()], device=row.device)
    cumulative = torch.cat(edges).to(torch.int32)
    longest = int(cumulative.diff().max())
    return {"cu_seq_lens_q": cumulative, "cu_seq_lens_k": cumulative, "max_length_q": longest,
            "max_length_k": longest}


def encoder_window(config, causal: bool) -> int | None:
    """The sliding window of an encoder's local-attention layers (None without such layers)."""
    if "sliding_attention" not in (getattr(config, "layer_types", None) or ()):
        return None
    if causal:
        raise ValueError(f"Packed layouts do not support decoders with sliding-window layers ({config.model_type}); "
                         f"use a decoder with full attention in every layer.")
    return config.sliding_window


def attention_arguments(config, document_ids: torch.Tensor, block_ids: torch.Tensor | None, causal: bool,
                        dtype: torch.dtype) -> dict:
    """Keywords for the backbone's forward that make its attention follow the packed layout, for the kernel
    ``config._attn_implementation``: a FlexAttention BlockMask (flex_attention), varlen lengths (flash), a
    boolean mask (sdpa) or an additive ``dtype`` mask (eager). Encoders with local-attention layers get one
    mask per layer type."""
    implementation = config._attn_implementation
    if implementation in FLASH_ATTENTION:
        if block_ids is not None:
            raise ValueError("The prefix-shared layout (stage causal) cannot run on flash-attention varlen, which "
                             "only separates documents; use --attn_implementation flex_attention (GPU) or sdpa.")
        return varlen_arguments(document_ids)

    def mask(window: int | None):
        if implementation == "flex_attention":
            return flex_block_mask(document_ids, block_ids, causal, window)
        allowed = dense_mask(document_ids, block_ids, causal, window)
        if implementation == "sdpa":
            return allowed
        return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
            ~allowed, torch.finfo(dtype).min)

    window = encoder_window(config, causal)
    if window is None:
        return {"attention_mask": mask(None)}
    return {"attention_mask": {"full_attention": mask(None), "sliding_attention": mask(window)}}


def attends_causally(backbone: nn.Module) -> bool:
    """Whether the backbone's self-attention is causal (decoders) rather than bidirectional (encoders)."""
    return any(getattr(module, "is_causal", False) for module in backbone.modules())


def packed_hidden_states(backbone: nn.Module, causal: bool, input_ids: torch.Tensor, position_ids: torch.Tensor,
                         document_ids: torch.Tensor, block_ids: torch.Tensor | None = None,
                         **backbone_kwargs) -> torch.Tensor:
    """The backbone's last hidden states [R, W, d] for a packed batch (``backbone`` is a base model:
    LlamaModel, BertModel, ...)."""
    dtype = backbone.get_input_embeddings().weight.dtype
    attention = attention_arguments(backbone.config, document_ids, block_ids, causal, dtype)
    return backbone(input_ids=input_ids, position_ids=position_ids, **attention,
                    **backbone_kwargs).last_hidden_state

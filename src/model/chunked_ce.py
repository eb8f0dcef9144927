"""Cross-entropy of a linear output layer without the full logits tensor.

The response loss of Lookahead-CLM needs logits for every response token over the whole vocabulary
(49k for SmolLM2): 2,560 tokens x 49,152 x 4 bytes = 0.5 GB, twice with its gradient. ``linear_cross_entropy``
computes the same mean loss chunk by chunk and writes the gradients of the hidden states and of the weight
during the forward pass, so at most ``chunk_size`` rows of logits exist at a time. On CUDA it uses Liger's
fused kernel when ``liger-kernel`` is installed.
"""
from __future__ import annotations

import importlib.util

import torch

CHUNK_SIZE = 1024


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """mean_i CE(hidden_i @ weight.T + bias, target_i), with the gradients computed chunk by chunk in forward."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                chunk_size: int) -> torch.Tensor:
        count = hidden.shape[0]
        wants_grad = any(ctx.needs_input_grad[:3])
        grad_hidden = torch.empty_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = torch.zeros_like(weight, dtype=torch.float32) if ctx.needs_input_grad[1] else None
        grad_bias = torch.zeros_like(bias, dtype=torch.float32) if ctx.needs_input_grad[2] else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, count, chunk_size):
            rows = hidden[start:start + chunk_size]
            chunk_targets = targets[start:start + chunk_size]
            logits = torch.nn.functional.linear(rows, weight, bias).float()
            log_norm = torch.logsumexp(logits, dim=-1)
            total += (log_norm - logits.gather(1, chunk_targets[:, None]).squeeze(1)).sum()
            if not wants_grad:
                continue
            # d(mean CE)/d(logits) = (softmax - one_hot) / count
            grad_logits = torch.exp(logits - log_norm[:, None])
            grad_logits[torch.arange(len(rows), device=rows.device), chunk_targets] -= 1.0
            grad_logits /= count
            compute = grad_logits.to(weight.dtype)  # under autocast the products below run in its dtype
            if grad_hidden is not None:
                grad_hidden[start:start + chunk_size] = (compute @ weight).to(hidden.dtype)
            if grad_weight is not None:
                grad_weight += (compute.T @ rows.to(weight.dtype)).float()
            if grad_bias is not None:
                grad_bias += grad_logits.sum(dim=0)
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype) if grad_weight is not None else None,
                              grad_bias.to(bias.dtype) if grad_bias is not None else None)
        return total / count

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        scale = lambda grad: None if grad is None else grad * grad_output.to(grad.dtype)  # noqa: E731
        return scale(grad_hidden), scale(grad_weight), scale(grad_bias), None, None


def uses_liger(hidden: torch.Tensor) -> bool:
    """Liger's fused kernel runs on CUDA tensors when liger-kernel is installed."""
    return hidden.is_cuda and importlib.util.find_spec("liger_kernel") is not None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         bias: torch.Tensor | None = None, chunk_size: int = CHUNK_SIZE) -> torch.Tensor:
    """Mean cross-entropy of ``hidden [N, d] @ weight.T (+ bias) [N, V]`` against ``targets [N]``, never holding
    more than ``chunk_size`` rows of logits (Liger's fused kernel on CUDA when installed)."""
    if uses_liger(hidden):
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

        return LigerFusedLinearCrossEntropyLoss()(weight, hidden, targets, bias)
    return ChunkedLinearCrossEntropy.apply(hidden, weight, bias, targets, chunk_size)

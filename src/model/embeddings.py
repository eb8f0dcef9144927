"""Sentence embeddings for routers, with an on-disk cache.

``embed`` encodes texts the way sentence-transformers' all-MiniLM models do: the encoder's last hidden
states are mean-pooled over the attention mask and L2-normalised, so cosine similarity is a dot product.

Cache: one file per (model, max_length) under ``$LOOKAHEAD_CACHE/embeddings`` (default
``~/.cache/lookahead-routing/embeddings``), ``<model-slug>-<key>.npz`` holding ``hashes`` (sha256 of each
text) and ``vectors`` (float32, one row per hash). Only texts missing from the cache are encoded; the file is
rewritten atomically (merged with whatever another process wrote meanwhile).
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from model.backbones import cache_dir as default_cache_root
from model.backbones import resolve_backbone

DEFAULT_EMBEDDING_MODEL = "packaged:all-minilm-l6-v2"
DEFAULT_MAX_LENGTH = 256  # tokens of a text that `embed` reads
PROGRESS_INTERVAL_S = 10.0
logger = logging.getLogger("embeddings")


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_file(model_name_or_path: str, max_length: int, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache file of one model (keyed by its resolved folder) at one truncation length."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_root() / "embeddings"
    model_dir = resolve_backbone(model_name_or_path)
    key = hashlib.sha256(f"{model_dir}\n{max_length}".encode("utf-8")).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name_or_path.rstrip("/"))[-60:]
    return root / f"{slug}-{key}.npz"


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as stored:
        return dict(zip(stored["hashes"].tolist(), stored["vectors"]))


def _write_cache(path: Path, new_vectors: dict[str, np.ndarray]) -> None:
    """Merge ``new_vectors`` into the cache file (re-read just before writing) and replace it atomically."""
    merged = _read_cache(path)
    merged.update(new_vectors)
    hashes = np.array(list(merged), dtype=str)
    vectors = np.stack(list(merged.values())).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, hashes=hashes, vectors=vectors)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@functools.lru_cache(maxsize=2)
def _load_encoder(model_dir: str, device: str):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    return tokenizer, model


def _encode(texts: list[str], model_dir: str, batch_size: int, max_length: int) -> np.ndarray:
    """Mean-pooled, L2-normalised embeddings of ``texts`` (batched by length to limit padding)."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer, model = _load_encoder(model_dir, device)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    started = last = time.monotonic()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            if time.monotonic() - last >= PROGRESS_INTERVAL_S and start:
                last, elapsed = time.monotonic(), time.monotonic() - started
                # texts are sorted by length, so the estimate from the short ones so far is a lower bound
                logger.info("progress: embedding %d/%d texts, %.0fs elapsed, at least ~%.0fs left", start, len(order),
                            elapsed, elapsed / start * (len(order) - start))
            rows = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            vectors[rows] = pooled.float().cpu().numpy()
    return vectors


def embed(texts: list[str], model_name_or_path: str = DEFAULT_EMBEDDING_MODEL, batch_size: int = 64,
          max_length: int = DEFAULT_MAX_LENGTH, cache_dir: str | os.PathLike | None = None, cache: bool = True) -> np.ndarray:
    """Return a float32 array [len(texts), hidden] of unit-norm embeddings, reading and filling the cache.

    ``model_name_or_path`` is anything ``model.backbones.resolve_backbone`` accepts. ``cache_dir`` overrides the
    cache folder (default ``$LOOKAHEAD_CACHE/embeddings``); ``cache=False`` encodes without reading or writing it
    (routing-time queries: each one is new, and the file would be rewritten per call).
    """
    texts = list(texts)
    model_dir = resolve_backbone(model_name_or_path)
    if not cache:
        return _encode(texts, model_dir, batch_size, max_length)
    path = cache_file(model_name_or_path, max_length, cache_dir)
    cached = _read_cache(path)
    hashes = [text_hash(t) for t in texts]
    missing = list(dict.fromkeys(h for h in hashes if h not in cached))
    if missing:
        text_of = dict(zip(hashes, texts))
        computed = _encode([text_of[h] for h in missing], model_dir, batch_size, max_length)
        new_vectors = dict(zip(missing, computed))
        _write_cache(path, new_vectors)
        cached.update(new_vectors)
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([cached[h] for h in hashes]).astype(np.float32)

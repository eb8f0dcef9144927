"""File helpers shared by every package: gzip-transparent readers and atomic writers.

Every reader accepts ``path`` or ``path + ".gz"`` (the paper's released data ships gzipped; after
``decompress_data.sh`` the plain files exist). Every error names the file and, for JSON Lines, the line.
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable


class DataError(ValueError):
    """Bad input data. The message names the file (and line or id) and says how to fix it."""


def resolve(path: str | os.PathLike) -> Path:
    """Return ``path`` if it exists, else ``path.gz`` if that exists, else raise FileNotFoundError."""
    p = Path(path)
    if p.exists():
        return p
    gz = p.with_name(p.name + ".gz")
    if gz.exists():
        return gz
    raise FileNotFoundError(
        f"{p} (nor {gz.name}) not found. Prepare the paper's data with `bash decompress_data.sh` "
        f"or pass the right --data_dir."
    )


def exists(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.exists() or p.with_name(p.name + ".gz").exists()


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, "r", encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    p = resolve(path)
    with _open_text(p) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(f"{p}: malformed JSON at line {e.lineno} column {e.colno} ({e.msg}). "
                            f"Fix or regenerate the file.") from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    p = resolve(path)
    rows = []
    with _open_text(p) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{p}, line {lineno}: malformed JSON ({e.msg}). Each line must be one "
                                f"JSON object; fix or delete that line.") from None
            if not isinstance(row, dict):
                raise DataError(f"{p}, line {lineno}: expected a JSON object, got "
                                f"{type(row).__name__}.")
            rows.append(row)
    return rows


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))

"""File helpers shared by every package: gzip-transparent readers and atomic writers.

Every reader accepts ``path`` or ``path + ".gz"`` (the paper's released data ships gzipped; after
``decompress_data.sh`` the plain files exist) and goes through :func:`read_bytes` and :func:`decode_utf8`, so a
truncated or corrupt gzip stream, bytes that are not UTF-8, malformed JSON or a folder in place of a file is a
``DataError`` that names the file, the line where it is known, and the fix.
"""
from __future__ import annotations

import json
import os
import tempfile
import zlib
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
        f"{p} (nor {gz.name}) not found. Check the path (for the paper's data: prepare it with "
        f"`bash decompress_data.sh`, or pass the right --data_dir)."
    )


def exists(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.exists() or p.with_name(p.name + ".gz").exists()


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of ``path`` (or ``path.gz``, decompressed).

    A truncated or corrupt gzip stream, a folder or an unreadable file is a DataError naming the file (for gzip,
    how many complete lines came out before the stream broke) and the fix; a missing file is FileNotFoundError.
    """
    p = resolve(path)
    if p.is_dir():
        raise DataError(f"{p}: is a folder, not a file. Pass the path of the file itself.")
    try:
        raw = p.read_bytes()
    except PermissionError as error:
        raise DataError(f"{p}: cannot be read ({error.strerror}). Fix the file's permissions or pass a "
                        f"readable copy.") from None
    return _gunzip(raw, p) if p.suffix == ".gz" else raw


def _gunzip(raw: bytes, path: Path) -> bytes:
    """The decompressed members of a gzip file; a truncated or corrupt stream is a DataError with the number of
    complete lines that came out before it broke off."""
    parts, rest = [], raw
    while True:
        stream = zlib.decompressobj(16 + zlib.MAX_WBITS)  # 16 +: a gzip header and trailer
        try:
            parts.append(stream.decompress(rest))
        except zlib.error as error:
            problem = f"corrupt ({error})"
            break
        if not stream.eof:
            problem = "truncated (it ends before its end-of-stream marker)"
            break
        rest = stream.unused_data
        if not rest.strip(b"\0"):  # another member may follow; trailing zero padding is allowed
            return b"".join(parts)
    complete = b"".join(parts).count(b"\n")
    raise DataError(f"{path}: the gzip stream is {problem}; it breaks off after {complete} complete line(s). "
                    f"Replace the file with a complete copy (copy or download it again, or gzip the original "
                    f"again).")


def decode_utf8(data: bytes, path: str | os.PathLike) -> str:
    """``data`` decoded as UTF-8 (a leading byte-order mark dropped); bytes that are not UTF-8 are a DataError
    naming ``path``, the line and the column (in bytes)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataError(f"{path}, line {line}: byte 0x{data[error.start]:02x} at column {column} is not UTF-8 "
                        f"({error.reason}). Save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or fix that "
                        f"line.") from None
    return text.removeprefix("\ufeff")


def read_text(path: str | os.PathLike) -> str:
    """The text of ``path`` (or ``path.gz``), UTF-8; errors as in :func:`read_bytes` and :func:`decode_utf8`."""
    p = resolve(path)
    return decode_utf8(read_bytes(p), p)


def read_json(path: str | os.PathLike) -> Any:
    """The JSON document in ``path`` (or ``path.gz``); malformed JSON is a DataError with its line and column."""
    p = resolve(path)
    try:
        return json.loads(read_text(p))
    except json.JSONDecodeError as e:
        raise DataError(f"{p}, line {e.lineno}: malformed JSON at column {e.colno} ({e.msg}). "
                        f"Fix or regenerate the file.") from None


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The JSON objects of a JSON Lines file ``path`` (or ``path.gz``), one per non-blank line.

    A line that is not one JSON object is a DataError naming the file and the line.
    """
    p = resolve(path)
    rows = []
    for lineno, line in enumerate(read_text(p).split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{p}, line {lineno}: malformed JSON ({e.msg}). Each line must be one "
                            f"JSON object; fix or delete that line.") from None
        if not isinstance(row, dict):
            raise DataError(f"{p}, line {lineno}: expected a JSON object, got {type(row).__name__}. "
                            f"Each line must be one JSON object; fix or delete that line.")
        rows.append(row)
    return rows


def require_rows(rows: list, path: str | os.PathLike, what: str, fix: str) -> list:
    """``rows`` when there is at least one, else a DataError: ``path`` holds no ``what``, then ``fix``."""
    if not rows:
        raise DataError(f"{path}: no {what}; the file is empty. {fix}")
    return rows


def writable_dir(path: str | os.PathLike, what: str) -> Path:
    """Folder ``path``, created if needed, after checking that a file can be written in it (call it before the work
    whose results go there). ``what`` names the argument (e.g. "--output_dir") in the DataError otherwise."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise DataError(f"{p}: {what} is a file, not a folder. Pass a folder for {what} (or move the file away).")
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=p, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise DataError(f"{p}: {what} cannot be written ({error.strerror}). Pass a folder you can write to for "
                        f"{what}.") from None
    return p


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

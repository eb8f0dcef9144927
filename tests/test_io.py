"""utils.io: the one reader every tool uses names the file, the line and the fix for every kind of broken file."""
import gzip
import os

import pytest

from utils.io import DataError, decode_utf8, read_json, read_jsonl, read_text, require_rows, writable_dir

LINES = "".join(f'{{"prompt_id": "p{i}", "prompt": "question {i}"}}\n' for i in range(200))


def test_truncated_gzip_names_the_file_and_the_last_complete_line(tmp_path):
    path = tmp_path / "instructions.jsonl"
    data = gzip.compress(LINES.encode())
    (tmp_path / "instructions.jsonl.gz").write_bytes(data[: len(data) // 2])
    prefix = b""
    with gzip.open(tmp_path / "instructions.jsonl.gz", "rb") as f:  # byte by byte: all that comes out before EOF
        try:
            while byte := f.read(1):
                prefix += byte
        except EOFError:
            pass
    complete = prefix.count(b"\n")
    assert 0 < complete < 200  # half the compressed stream holds some, not all, of the 200 lines
    with pytest.raises(DataError, match=rf"instructions\.jsonl\.gz: the gzip stream is truncated .*; it breaks "
                                        rf"off after {complete} complete line\(s\)\. Replace the file with a "
                                        rf"complete copy"):
        read_jsonl(path)


def test_concatenated_gzip_members_are_one_file(tmp_path):
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(b'{"a": 1}\n') + gzip.compress(b'{"a": 2}\n'))
    assert read_jsonl(tmp_path / "a.jsonl") == [{"a": 1}, {"a": 2}]


def test_a_file_that_is_not_gzip_behind_a_gz_name(tmp_path):
    (tmp_path / "a.json.gz").write_bytes(b'{"not": "compressed"}')
    with pytest.raises(DataError, match=r"a\.json\.gz: the gzip stream is corrupt \(.*incorrect header check\)"):
        read_json(tmp_path / "a.json")


def test_bytes_that_are_not_utf8_name_line_and_column(tmp_path):
    path = tmp_path / "responses.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": "caf\xe9"}\n')  # latin-1 e-acute on line 3, column 11
    with pytest.raises(DataError, match=r"responses\.jsonl, line 3: byte 0xe9 at column 11 is not UTF-8 .*"
                                        r"Save the file as UTF-8"):
        read_jsonl(path)
    gz = tmp_path / "gz" / "responses.jsonl"
    gz.parent.mkdir()
    (gz.parent / "responses.jsonl.gz").write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(DataError, match=r"responses\.jsonl\.gz, line 3: byte 0xe9 at column 11"):
        read_jsonl(gz)
    with pytest.raises(DataError, match=r"x\.yaml, line 1: byte 0xff at column 1"):
        decode_utf8(b"\xff", "x.yaml")


def test_byte_order_mark_blank_lines_and_crlf_are_read(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\r\n{"a": 2}\r\n')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert read_text(path).startswith('{"a": 1}')


def test_malformed_json_and_a_line_that_is_not_an_object(tmp_path):
    (tmp_path / "m.json").write_text('{\n  "a": [1,\n}\n')
    with pytest.raises(DataError, match=r"m\.json, line 3: malformed JSON at column 1"):
        read_json(tmp_path / "m.json")
    (tmp_path / "m.jsonl").write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"m\.jsonl, line 2: expected a JSON object, got list\. Each line must be one "
                                        r"JSON object; fix or delete that line\."):
        read_jsonl(tmp_path / "m.jsonl")


def test_a_folder_in_place_of_a_file_and_a_missing_file(tmp_path):
    (tmp_path / "instructions.jsonl").mkdir()
    with pytest.raises(DataError, match=r"instructions\.jsonl: is a folder, not a file"):
        read_jsonl(tmp_path / "instructions.jsonl")
    with pytest.raises(FileNotFoundError, match=r"b\.json \(nor b\.json\.gz\) not found\. Check the path"):
        read_json(tmp_path / "b.json")


def test_require_rows(tmp_path):
    assert require_rows([{"a": 1}], "f", "rows", "Add some.") == [{"a": 1}]
    with pytest.raises(DataError, match=r"^f: no responses; the file is empty\. Generate them\.$"):
        require_rows([], "f", "responses", "Generate them.")


def test_writable_dir_refuses_a_file_and_an_unwritable_place(tmp_path):
    assert writable_dir(tmp_path / "new" / "out", "--output_dir") == tmp_path / "new" / "out"
    assert (tmp_path / "new" / "out").is_dir() and os.listdir(tmp_path / "new" / "out") == []  # no probe left
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match=r"file: --output_dir is a file, not a folder\. Pass a folder"):
        writable_dir(tmp_path / "file", "--output_dir")
    with pytest.raises(DataError, match=r"--out cannot be written \(Not a directory\)"):
        writable_dir(tmp_path / "file" / "below", "--out")
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        if os.access(read_only, os.W_OK):  # root writes anywhere; a read-only file system stops even root
            read_only = "/sys/lookahead-write-check"
        with pytest.raises(DataError, match=r"--out cannot be written \(.+\)\. Pass a folder you can write to"):
            writable_dir(read_only, "--out")
    finally:
        (tmp_path / "ro").chmod(0o700)

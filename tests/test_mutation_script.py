"""scripts/mutation_test.py's own helpers (the mutation runs themselves are a slow target, not run here)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import mutation_test  # noqa: E402


def test_leftovers_of_tests_are_removed_from_the_mutants_folder(tmp_path):
    mutants = tmp_path / "mutants"
    for name in ("src", "tests", "None"):
        (mutants / name).mkdir(parents=True)
    (mutants / "None" / "config.json").write_text("{}")  # a run folder a mutant wrote
    (mutants / "pyproject.toml").write_text("")
    (mutants / "mutmut-stats.json").write_text("{}")
    (mutants / "stray.log").write_text("x")
    (tmp_path / "elsewhere").mkdir()
    (mutants / "data").symlink_to(tmp_path / "elsewhere")
    (mutants / "link").symlink_to(tmp_path / "elsewhere")
    assert mutation_test.remove_leftovers(mutants) == ["None", "link", "stray.log"]
    assert sorted(p.name for p in mutants.iterdir()) == ["data", "mutmut-stats.json", "pyproject.toml", "src", "tests"]
    assert (tmp_path / "elsewhere").is_dir()  # a symlink is unlinked, not followed
    assert mutation_test.remove_leftovers(mutants) == []
    assert mutation_test.remove_leftovers(tmp_path / "absent") == []


def test_equivalent_rows_are_read_per_module_with_escaped_bars(tmp_path, monkeypatch):
    doc = tmp_path / "doc.md"
    doc.write_text("| module | function | mutated line | reason |\n|---|---|---|---|\n"
                   "| packing | visible | `return a \\| b` | why |\n| losses | f | `x = 1` | because |\n")
    monkeypatch.setattr(mutation_test, "EQUIVALENTS", doc)
    assert mutation_test.equivalents("packing") == {"visible: return a | b": "why"}
    assert mutation_test.equivalents("losses") == {"f: x = 1": "because"}

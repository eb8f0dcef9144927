"""Before/after tables for issue 12 from the tables its batteries print (no tool is run here).

    python bench/issue12_tables.py bad_inputs BEFORE.md AFTER.md
        # BEFORE/AFTER: what ``scripts/bad_inputs.py --repo DIR`` printed for each checkout
    python bench/issue12_tables.py hostile BEFORE.md AFTER.md [AFTER_NO_HOOK.md]
        # what ``tests/hostile_corpus.py [--no_audit_hook]`` printed for each checkout

Each prints one markdown table, a row per case (cases matched by tool and name, or by program), and the counts.
The bad-input table also tags each case with the kind of issue 12 §4 it measures (``KINDS``; a case the issue's
list does not name is tagged "-").
"""
from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

KINDS = [  # (tag, test on "tool: case name"), first match wins; issue 12 §4's kinds
    ("gz/UTF-8", re.compile(r"truncated|not UTF-8")),
    ("exit 0 on incomplete input", re.compile(r"compute_rewards: responses: (duplicate prompt_id|prompt_ids missing|"
                                              r"empty file)|generate_responses: instructions: empty file")),
    ("misleading: empty instructions", re.compile(r"instructions(\.jsonl)?:? (empty|.*instructions\.jsonl empty)")),
    ("misleading: all ids held out", re.compile(r"every id held out")),
    ("output folder a file / read-only",
     re.compile(r"(--\w+_dir|--out|--output_path) (is a file|is a folder|read-only)")),
]


def markdown_rows(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip()[1:-1].split(" | ")])
    return rows[1:]  # the header row is the first


def kind_of(tool: str, name: str) -> str:
    for tag, pattern in KINDS:
        if pattern.search(f"{tool}: {name}"):
            return tag
    return "-"


def bad_inputs(before: Path, after: Path) -> None:
    # | # | tool | case | exit | verdict | message lacks | s | message (start) |
    old = {(r[1], r[2]): r for r in markdown_rows(before)}
    new = {(r[1], r[2]): r for r in markdown_rows(after)}
    if set(old) != set(new):
        raise SystemExit(f"the two tables hold different cases: {sorted(set(old) ^ set(new))}")

    def cell(row):
        return row[4] + (f" ({row[5]})" if row[5] and row[4] != "failed" else "")

    print("| # | tool | case | issue 12 §4 kind | before | after | after: message (start) |")
    print("|---|---|---|---|---|---|---|")
    counts = {"before": Counter(), "after": Counter()}
    by_kind: dict[str, Counter] = {}
    for key, row in old.items():
        kind = kind_of(*key)
        counts["before"][row[4]] += 1
        counts["after"][new[key][4]] += 1
        by_kind.setdefault(kind, Counter())[("before", row[4])] += 1
        by_kind[kind][("after", new[key][4])] += 1
        print(f"| {row[0]} | {key[0]} | {key[1]} | {kind} | {cell(row)} | {cell(new[key])} | {new[key][7][:90]} |")
    print()
    print("| cases | n | before held / weak / failed | after held / weak / failed |\n|---|---|---|---|")
    for kind, counter in [*sorted(by_kind.items()), ("all", None)]:
        def three(side):
            source = counts[side] if counter is None else {v: counter[(side, v)] for v in ("held", "weak", "failed")}
            return " / ".join(str(source.get(v, 0)) for v in ("held", "weak", "failed"))
        n = len(old) if counter is None else sum(c for (side, _), c in counter.items() if side == "before")
        print(f"| {kind} | {n} | {three('before')} | {three('after')} |")


def hostile(before: Path, after: Path, after_no_hook: Path | None) -> None:
    # | program | contained | score | how it got out | sandbox's error |
    tables = [("before", markdown_rows(before)), ("after, hook on", markdown_rows(after))]
    if after_no_hook:
        tables.append(("after, hook off", markdown_rows(after_no_hook)))
    by_name = [{r[0]: r for r in rows} for _, rows in tables]
    names = sorted(by_name[0])
    if any(set(table) != set(names) for table in by_name):
        raise SystemExit("the tables hold different programs")
    print("| program | " + " | ".join(label for label, _ in tables) + " | before: how it got out | "
          + f"{tables[-1][0]}: what stopped it |")
    print("|---|" + "---|" * (len(tables) + 2))
    for name in names:
        cells = [("contained" if t[name][1] == "yes" else "**escaped**") + f" ({t[name][2]})" for t in by_name]
        got_out = by_name[0][name][3] if by_name[0][name][1] != "yes" else ""
        print(f"| {name} | " + " | ".join(cells) + f" | {got_out} | {by_name[-1][name][4]} |")
    print()
    print(", ".join(f"{label}: {sum(r[1] == 'yes' for r in rows)} of {len(rows)} contained" for label, rows in tables))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="table", required=True)
    bad = sub.add_parser("bad_inputs")
    bad.add_argument("before", type=Path)
    bad.add_argument("after", type=Path)
    corpus = sub.add_parser("hostile")
    corpus.add_argument("before", type=Path)
    corpus.add_argument("after", type=Path)
    corpus.add_argument("after_no_hook", type=Path, nargs="?")
    args = parser.parse_args(argv)
    if args.table == "bad_inputs":
        bad_inputs(args.before, args.after)
    else:
        hostile(args.before, args.after, args.after_no_hook)


if __name__ == "__main__":
    main()

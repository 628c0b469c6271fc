"""README sections that restate the repository must say what the repository says."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_worked_example_is_the_case_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = "`cases/conv_bias_is_added_per_channel.py`:\n\n```python\n"
    assert head in readme, "README lost its worked example"
    start = readme.index(head) + len(head)
    shown = readme[start:readme.index("```\n", start)]
    assert shown == (ROOT / "cases" / "conv_bias_is_added_per_channel.py").read_text(encoding="utf-8"), (
        "README's worked example differs from cases/conv_bias_is_added_per_channel.py: copy the file in")


def test_the_claims_table_is_the_case_docstrings() -> None:
    """One row per case file, in name order: its name and its docstring's first paragraph."""
    import ast

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `") and line.count("|") == 3]
    table = [line for line in rows if line.split("`")[1] in {p.stem for p in (ROOT / "cases").glob("*.py")}]
    want = []
    for path in sorted((ROOT / "cases").glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        want.append(f"| `{path.stem}` | {' '.join(doc.split(chr(10) * 2)[0].split())} |")
    assert table == want, ("README's claims table differs from the case docstrings; its rows should be:\n"
                           + "\n".join(want))


def test_the_fw_api_list_is_the_protocol() -> None:
    from equiv.frameworks import case_api_lines

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- fw API: generated from equiv.frameworks.Framework")
    start = readme.index("\n", start) + 1
    shown = readme[start:readme.index("<!-- end fw API -->")].strip().splitlines()
    assert shown == case_api_lines(), "README's fw API list is stale; its lines should be:\n" + "\n".join(
        case_api_lines())


def test_the_matrix_sample_shows_todays_cases() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("```\n", readme.index("<!-- matrix sample")) + 4
    block = readme[start:readme.index("```", start)].splitlines()
    header = next(i for i, line in enumerate(block) if line.startswith("case "))
    rows = [line.split()[0] for line in block[header + 2:] if line and not line.startswith("cells:")]
    rows = rows[:rows.index("known")] if "known" in rows else rows
    assert rows == sorted(p.stem for p in (ROOT / "cases").glob("*.py")), (
        "README's matrix sample is not today's: paste the matrix of `pytest cases --equiv-device cpu`")

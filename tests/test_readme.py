"""README's generated sections are what `equiv readme` writes from their sources."""

from __future__ import annotations

from pathlib import Path

from equiv import readme
from equiv.frameworks import case_api_lines

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "README.md").read_text(encoding="utf-8")
STALE = "README.md is stale: run `equiv readme` (from the project root) to rewrite it"


def test_the_claims_table_is_the_case_docstrings() -> None:
    assert readme.section(TEXT, readme.CLAIMS) == readme.claims_rows(ROOT / "cases"), STALE


def test_the_fw_api_list_is_the_protocol() -> None:
    assert readme.section(TEXT, readme.API) == case_api_lines(), STALE


def test_the_matrix_sample_shows_todays_cases() -> None:
    block = readme.section(TEXT, readme.MATRIX)
    header = next(i for i, line in enumerate(block) if line.startswith("case "))
    rows = []
    for line in block[header + 2:]:
        if not line or line.startswith(("cells:", "known defects", "```")):
            break
        rows.append(line.split()[0])
    assert rows == sorted(p.stem for p in (ROOT / "cases").glob("*.py")), (
        "README's matrix sample is not today's: run the suite with --equiv-report R.json, then "
        "`equiv readme --report R.json`")


def test_the_worked_example_is_the_case_file() -> None:
    head = "`cases/conv_bias_is_added_per_channel.py`:\n\n```python\n"
    assert head in TEXT, "README lost its worked example"
    start = TEXT.index(head) + len(head)
    shown = TEXT[start:TEXT.index("```\n", start)]
    assert shown == (ROOT / "cases" / "conv_bias_is_added_per_channel.py").read_text(encoding="utf-8"), (
        "README's worked example differs from cases/conv_bias_is_added_per_channel.py: copy the file in")


def test_the_generator_rewrites_a_stale_readme(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "a_claim.py").write_text('"""A claim.\n\nMore."""\n', encoding="utf-8")
    stale = (f"{readme.CLAIMS[0]}\n| `old` | gone |\n{readme.CLAIMS[1]}\n"
             f"{readme.API[0]}\n- `fw.old()`\n{readme.API[1]}\n")
    (tmp_path / "README.md").write_text(stale, encoding="utf-8")
    readme.update(tmp_path / "README.md", cases)
    text = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert readme.section(text, readme.CLAIMS) == ["| `a_claim` | A claim. |"]
    assert readme.section(text, readme.API) == case_api_lines()

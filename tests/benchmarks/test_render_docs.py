"""The docs hold the measured tables of benchmarks/results/, included by a command."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import render_docs  # noqa: E402


def test_docs_are_up_to_date():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "render_docs.py"),
                           "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_include_replaces_the_block_with_the_file(tmp_path):
    (tmp_path / "r.md").write_text("| a |\n|---|\n| 1 |\n")
    doc = "text\n<!-- include r.md -->\nold table\n<!-- end include -->\nmore\n"
    assert render_docs.render(doc, tmp_path) == \
        "text\n<!-- include r.md -->\n| a |\n|---|\n| 1 |\n<!-- end include -->\nmore\n"
    missing = "<!-- include nope.md -->\n<!-- end include -->\n"
    assert "Not measured yet" in render_docs.render(missing, tmp_path)


def test_boards_table_comes_from_the_board_list():
    from groupnet.hw.boards import BOARDS
    table = render_docs.boards_table()
    assert all(f"`{name}`" in table for name in BOARDS)


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) < 250

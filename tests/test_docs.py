"""The documentation: it reads well where people meet it, its code is the tested code, and it
builds as the README says (only the ``[docs]`` extra installed), every warning an error."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flask_sente.config import Options
from tests.fresh import clean_env, copy_of_the_repository, install
from tests.support import ROOT

# docs/_ext/snippets.py: the docs' tool, not a package to import
spec = importlib.util.spec_from_file_location("docs_snippets", ROOT / "docs/_ext/snippets.py")
assert spec is not None and spec.loader is not None
snippets = sys.modules["docs_snippets"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(snippets)

#: Sphinx markup that shows as markup, not as what it means, on a forge.
DIRECTIVE = re.compile(r"^```+\{(?:literalinclude|include|eval-rst)\}", re.MULTILINE)
ROLE = re.compile(r"\{(?:doc|ref|class|func|meth|attr|mod|exc|py:\w+)\}`")


def readme_pages() -> list[Path]:
    """The README and every docs page it links."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    linked = re.findall(r"\]\((docs/[^)#\s]+\.md)\)", readme)
    assert len(linked) >= 10, linked
    return [ROOT / "README.md", *(ROOT / page for page in dict.fromkeys(linked))]


@pytest.mark.parametrize("page", readme_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_the_readme_links_read_as_plain_markdown(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert not DIRECTIVE.findall(text), "a directive shows as a directive on a forge: use a fence"
    roles = ROLE.findall(text)
    assert not roles, f"{roles}: on a forge a role shows as markup; use a Markdown link"


def test_every_code_example_is_a_copy_of_its_file() -> None:
    found = [s for page in snippets.pages() for s in snippets.snippets(page)]
    assert len(found) >= 8  # quickstart, testing, examples, deployment
    drifted = [f"{s.page.relative_to(ROOT)}: {s.path}" for s in found if s.body != s.expected()]
    assert not drifted, (
        f"these examples differ from their files: {drifted}; "
        "`python docs/_ext/snippets.py` copies them afresh"
    )


def test_a_drifted_copy_is_found_and_rewritten(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n"
        '<!-- snippet: examples/quickstart.py from "@sente.on" -->\n'
        "```python\nan old copy\n```\n\nMore text.\n",
        encoding="utf-8",
    )
    (found,) = snippets.snippets(page)
    assert found.body == "an old copy"
    assert found.expected().startswith('@sente.on("demo/hello")')
    assert snippets.rewrite(page) is True
    assert snippets.rewrite(page) is False
    text = page.read_text(encoding="utf-8")
    assert text.startswith("Text.\n\n<!-- snippet")
    assert text.endswith("parser.parse_args().port, threaded=True)\n```\n\nMore text.\n")


@pytest.mark.slow  # a virtual environment and a pip install from the package index
def test_docs_build_with_only_the_docs_extra(tmp_path: Path) -> None:
    checkout = copy_of_the_repository(tmp_path / "flask_sente")
    python = install(checkout, ".[docs]", timeout=600)
    out = tmp_path / "html"
    result = subprocess.run(
        [str(python), "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs", str(out)],
        cwd=checkout,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "WARNING" not in result.stderr, result.stderr

    config_page = (out / "api" / "config.html").read_text(encoding="utf-8")
    missing = [
        f.name for f in dataclasses.fields(Options) if f"SENTE_{f.name.upper()}" not in config_page
    ]
    assert not missing, f"options missing from the configuration reference: {missing}"
    server_api = (out / "api" / "server.html").read_text(encoding="utf-8")
    assert "watch_connected_uids" in server_api, "autodoc did not document flask_sente.Sente"
    packers_api = (out / "api" / "packers.html").read_text(encoding="utf-8")
    assert "flask_sente.msgpack.dumps" in packers_api, "the msgpack API is missing"
    quickstart = (out / "quickstart.html").read_text(encoding="utf-8")
    assert "csrf_from_page" in quickstart  # a fenced example, highlighted as code

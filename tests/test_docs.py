"""The documentation builds as CI builds it: Sphinx, every warning an error."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from flask_sente.config import Options
from tests.support import ROOT


def test_docs_build_with_warnings_as_errors(tmp_path: Path) -> None:
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr

    config_page = (out / "api" / "config.html").read_text(encoding="utf-8")
    missing = [
        f.name for f in dataclasses.fields(Options) if f"SENTE_{f.name.upper()}" not in config_page
    ]
    assert not missing, f"options missing from the configuration reference: {missing}"
    server_api = (out / "api" / "server.html").read_text(encoding="utf-8")
    assert "watch_connected_uids" in server_api, "autodoc did not document flask_sente.Sente"

"""The installed package is one namespace: `trialctl` and nothing else at the top."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_the_wheel_installs_only_the_trialctl_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    (wheel,) = tmp_path.glob("trialctl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    dist_info = {top for top in tops if top.endswith(".dist-info")}
    assert tops - dist_info == {"trialctl"}
    for package in ("cli", "domain", "ledger", "protocols"):
        assert f"trialctl/{package}/__init__.py" in names
    assert "trialctl/protocols/NCT00084513.toml" in names
    assert "trialctl/protocols/protocol.schema.json" in names  # for protocol authors
    assert "trialctl/protocols/ctcae_v3_labs.toml" in names  # read by domain/lab_grading.py
    assert "trialctl/docs/FORMAT.md" in names  # copied into every `export bundle`
    assert "trialctl/cli/main.py" in names
    assert not any(name.startswith("trialctl/tests") for name in names)

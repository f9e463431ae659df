"""The source tree installs as one package, ``lottery``, without symlinks.

graphs/, nodes/ and stores/ are the real folders of ``lottery.graphs``, ``lottery.nodes`` and
``lottery.stores`` (setuptools ``package-dir``); a non-editable install must carry every module
of them, or ``pip install .`` gives a ``lottery`` that fails on its first import.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"lottery": "lottery", "graphs": "lottery/graphs", "nodes": "lottery/nodes",
           "stores": "lottery/stores"}


def test_the_tree_has_no_symlinks():
    listed = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout
    links = [line.split("\t", 1)[1] for line in listed.splitlines() if line.startswith("120000")]
    assert links == [], f"symlinks in the tree: {links}"


def test_a_built_wheel_holds_every_module_under_its_lottery_name(tmp_path):
    # Built from a copy of the checked-out files: a build/ folder left in the tree by an
    # earlier build would hand setuptools stale modules and hide a missing package.
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(src)],
        capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("lottery_llm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"{target}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, target in SOURCES.items()
        for path in (ROOT / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert expected - names == set(), f"missing from the wheel: {sorted(expected - names)}"
    assert "lottery/py.typed" in names
    # nothing lands at the top level of site-packages under a generic name
    assert not {n.split("/")[0] for n in names} & {"graphs", "nodes", "stores", "tests"}

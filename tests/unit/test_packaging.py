"""The wheel a compute node installs: the product, its licence and entry points; not the test
rig. Built from this checkout as tools/install-service.sh builds it (``pip wheel --no-deps``)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                            str(out), str(TOP)], capture_output=True, text=True)
    if built.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"pip wheel failed: {built.stderr[-2000:]}")
        pytest.skip(f"cannot build the wheel here: {built.stderr[-300:]}")
    (path,) = out.glob("dpagent-*.whl")
    return path


def test_the_wheel_has_the_product_and_not_the_test_rig(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith("dpagent/lab/")]
    for module in ("dpagent/daemon/service.py", "dpagent/diagnose/tracer.py",
                   "dpagent/controller/__init__.py", "flows/compiler.py", "sriov/driver.py",
                   "sriov/intel/i40e.py"):
        assert module in names, module
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    entry_points = next(zipfile.ZipFile(wheel).read(n).decode() for n in names
                        if n.endswith(".dist-info/entry_points.txt"))
    for script in ("dpagent = ", "dpagent-ctl = ", "dpagent-controller = "):
        assert script in entry_points


def test_the_installed_product_imports_without_the_rig(wheel, tmp_path):
    """Installed alone (its dependencies from this environment), every command's module
    imports, and dpagent.lab is not there."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    code = ("import importlib, importlib.util, sys\n"
            "for m in ('dpagent.cmd.agent', 'dpagent.cmd.ctl', 'dpagent.cmd.controller',"
            " 'dpagent.daemon.service', 'dpagent.diagnose.tracer', 'sriov.intel.i40e'):\n"
            "    importlib.import_module(m)\n"
            "assert importlib.util.find_spec('dpagent.lab') is None, 'dpagent.lab installed'\n"
            "import dpagent; print(dpagent.__file__)\n")
    # -S: no site, so no .pth file of this checkout's editable install; the dependencies are
    # taken from this environment's site-packages, the product from the wheel alone
    site_packages = [p for p in sys.path if p.endswith("site-packages")]
    path = [str(target), *site_packages]
    done = subprocess.run([sys.executable, "-S", "-I", "-c", f"import sys; sys.path[:0] = "
                           f"{path!r}; exec({code!r})"], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(str(target)), done.stdout

"""The command line and the documentation generated from the pipeline declaration."""

import json
import subprocess
import sys
from pathlib import Path

from flows import pipeline

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).parent / "golden"


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "flows", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT)


def test_compile_prints_sorted_loadable_flows():
    result = run("compile", str(GOLDEN / "small_host.json"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (GOLDEN / "small_host.flows").read_text()


def test_ports_without_ofport_get_one_deterministically():
    info = json.loads((GOLDEN / "small_host.json").read_text())
    for device in info["devices"].values():
        del device["ofport"], device["local_vlan"]
    first, second = run("compile", "-", stdin=json.dumps(info)), run("compile", "-",
                                                                     stdin=json.dumps(info))
    assert first.returncode == 0 and first.stdout == second.stdout
    assert "in_port=1," in first.stdout and "in_port=3," in first.stdout


def test_bad_port_is_reported_on_stderr_and_others_compile():
    info = json.loads((GOLDEN / "small_host.json").read_text())
    info["security_groups"]["web"][0]["protocol"] = "nonsense"
    result = run("compile", "-", stdin=json.dumps(info))
    assert result.returncode == 1
    assert "error: port pa: security group web rule #0" in result.stderr
    assert "unknown protocol 'nonsense'" in result.stderr
    assert "reg5=0x3," in result.stdout and "in_port=1," not in result.stdout


def test_unreadable_input_exits_2():
    result = run("compile", "-", stdin="{not json")
    assert result.returncode == 2 and "cannot compile" in result.stderr


def test_readme_pipeline_table_matches_the_declaration():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- pipeline-table:start -->") + len("<!-- pipeline-table:start -->")
    end = readme.index("<!-- pipeline-table:end -->")
    assert readme[start:end].strip() == pipeline.table_markdown()


def test_readme_tunnel_table_matches_the_declaration():
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- tunnel-table:start -->") + len("<!-- tunnel-table:start -->")
    end = readme.index("<!-- tunnel-table:end -->")
    assert readme[start:end].strip() == pipeline.table_markdown(pipeline.TUNNEL_TABLES)
    assert run("tables", "--bridge", "tun").stdout.strip() == readme[start:end].strip()

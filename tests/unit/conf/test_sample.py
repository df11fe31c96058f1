"""etc/dpagent.conf.sample must be what the generator makes of the options: dpagent's own
byte for byte, oslo.log's and oslo.messaging's the same options (their help text is theirs and
changes with their releases)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[3]
OWN = "dpagent"
LIBRARIES = ("oslo.log", "oslo.messaging")


def blocks(text: str) -> dict[tuple[str, str], str]:
    """(group, namespace) -> the text of that namespace's options in that group."""
    found: dict[tuple[str, str], list[str]] = {}
    group = namespace = ""
    for line in text.splitlines():
        if re.fullmatch(r"\[[^\]]+\]", line):
            group, namespace = line, ""
            continue
        origin = re.fullmatch(r"# From (\S+)", line)
        if origin:
            namespace = origin.group(1)
            continue
        if namespace:
            found.setdefault((group, namespace), []).append(line)
    return {key: "\n".join(lines).strip() for key, lines in found.items()}


def option_names(block: str) -> list[str]:
    """The options a block sets out (``#name = value``), in order."""
    return re.findall(r"^#(\w+) = ", block, re.MULTILINE)


def test_sample_config_is_up_to_date(tmp_path):
    out = tmp_path / "dpagent.conf.sample"
    subprocess.run(
        [sys.executable, "-m", "oslo_config.generator",
         "--config-file", str(TOP / "etc/oslo-config-generator/dpagent.conf"),
         "--output-file", str(out)],
        check=True, cwd=TOP, capture_output=True,
    )
    generated = blocks(out.read_text())
    committed = blocks((TOP / "etc/dpagent.conf.sample").read_text())
    stale = "etc/dpagent.conf.sample is stale: regenerate it with `tox -e genconfig`"
    assert generated.keys() == committed.keys(), stale
    for (group, namespace), text in generated.items():
        if namespace == OWN:
            assert text == committed[group, namespace], f"{stale} ({group})"
        else:
            assert namespace in LIBRARIES, namespace
            assert option_names(text) == option_names(committed[group, namespace]), \
                f"{stale} ({group}, {namespace})"


def test_the_sample_has_the_libraries_options_an_operator_sets():
    sample = blocks((TOP / "etc/dpagent.conf.sample").read_text())
    assert {"debug", "log_file", "use_journal"} <= set(
        option_names(sample["[DEFAULT]", "oslo.log"]))
    assert {"transport_url", "rpc_response_timeout"} <= set(
        option_names(sample["[DEFAULT]", "oslo.messaging"]))
    assert "heartbeat_timeout_threshold" in option_names(
        sample["[oslo_messaging_rabbit]", "oslo.messaging"])

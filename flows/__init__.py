"""dpagent's security-group compiler: a pure library, model in, OpenFlow flows out.

No I/O, no OVS calls, no global configuration: the same input always yields the same flows, byte
for byte. The daemon feeds it the control plane's data and ships its output to br-int.
"""

from __future__ import annotations

from flows.compiler import CompileResult, compile_host, compile_sg_info
from flows.flow import Flow
from flows.model import HostModel, PortError
from flows.parse import InputError, parse_host

__all__ = ["CompileResult", "Flow", "HostModel", "InputError", "PortError", "compile_host",
           "compile_sg_info", "parse_host"]

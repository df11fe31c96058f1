"""``python -m flows``: compile security-group info to flows, or show the pipeline.

    python -m flows compile SG_INFO.json > flows.txt    # ovs-ofctl add-flows syntax, sorted
    ovs-ofctl -O OpenFlow15 --bundle add-flows br-int flows.txt
    python -m flows tables [--bridge tun]               # br-int's (br-tun's) tables, Markdown

Errors for single ports go to stderr (the other ports still compile); the exit status is 1 when
any port failed, 2 when the input cannot be read at all.
"""

from __future__ import annotations

import argparse
import json
import sys

from flows import compile_sg_info, pipeline
from flows.offline import with_local_facts
from flows.parse import InputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dpagent-flows", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    compile_cmd = commands.add_parser("compile", help="compile SG info JSON to flows")
    compile_cmd.add_argument("sg_info",
                             help="security_group_info_for_devices reply, or - for stdin")
    compile_cmd.add_argument("--cookies", action="store_true",
                             help="also print what each cookie stands for, as comments")
    tables_cmd = commands.add_parser("tables", help="print the pipeline's tables")
    tables_cmd.add_argument("--bridge", choices=("int", "tun"), default="int",
                            help="br-int's tables (default) or br-tun's")
    args = parser.parse_args(argv)

    if args.command == "tables":
        print(pipeline.table_markdown(pipeline.TUNNEL_TABLES if args.bridge == "tun"
                                      else pipeline.TABLES))
        return 0
    try:
        source = sys.stdin if args.sg_info == "-" else open(args.sg_info, encoding="utf-8")
        with source:
            sg_info = json.load(source)
        result = compile_sg_info(with_local_facts(sg_info))
    except (OSError, ValueError, InputError) as exc:
        print(f"dpagent-flows: cannot compile {args.sg_info}: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    for line in result.flow_lines():
        out.write(line + "\n")
    if args.cookies:
        for cookie in sorted(result.cookies):
            out.write(f"# {cookie:#x} {result.explain(cookie)}\n")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())

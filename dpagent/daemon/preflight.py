"""Checks of the configuration before the daemon forks its worker.

A mistake in the configuration must stop the daemon at once, with one line naming the option,
and exit 2 -- not surface in the worker, whose exit cotyledon answers by forking it again,
forever, while systemd sees a healthy unit. Everything that can be judged from the options
alone is judged here; what needs the switch or the broker is the worker's business.

Each check returns the problems it found (strings naming the option), so the daemon can print
them all at once: an operator fixes the file once, not once per problem.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import os
from collections.abc import Iterable, Iterator

from oslo_config import cfg

UNIX_PATH_MAX = 107
"""Longest path a unix socket can bind to on Linux (sun_path is 108 bytes with its NUL)."""

def option_values(conf: cfg.ConfigOpts) -> list[str]:
    """Every registered option's value, read once: oslo.config converts a value only when it
    is first read, so a bad one (``report_interval = soon``) would otherwise fail later, in
    the worker, as a traceback."""
    problems = []
    for group, name in _registered(conf):
        try:
            getattr(conf[group] if group else conf, name)
        except (cfg.ConfigFileValueError, ValueError) as exc:
            where = f"[{group or 'DEFAULT'}] {name}"
            problems.append(f"{where}: {str(exc).splitlines()[0]}")
    return problems


def _registered(conf: cfg.ConfigOpts) -> Iterator[tuple[str | None, str]]:
    for name in sorted(conf):
        if isinstance(conf[name], cfg.ConfigOpts.GroupAttr):
            for opt in sorted(conf[name]):
                yield name, opt
        else:
            yield None, name


def transport_url(conf: cfg.ConfigOpts) -> list[str]:
    """A transport URL naming a broker is required: without one oslo.messaging falls back to
    ``rabbit://``, a broker on localhost, and the agent would join whatever broker runs there."""
    import oslo_messaging

    unset = ["[DEFAULT] transport_url is not set (or names no broker host): name the control "
             "plane's message broker, e.g. rabbit://user:password@host:5672/"]
    if not conf.transport_url:
        return unset
    try:
        parsed = oslo_messaging.TransportURL.parse(conf, conf.transport_url)
        [(host.hostname, host.port) for host in parsed.hosts]  # a bad port fails only here
    except (oslo_messaging.InvalidTransportURL, ValueError) as exc:
        return [f"[DEFAULT] transport_url: {exc}"]
    drivers = {e.name: e for e in
               importlib.metadata.entry_points(group="oslo.messaging.drivers")}
    if parsed.transport not in drivers:
        return [f"[DEFAULT] transport_url: unknown transport {parsed.transport!r} "
                f"(known: {', '.join(sorted(drivers))})"]
    try:
        drivers[parsed.transport].load()  # a module import, no connection
    except ImportError as exc:
        return [f"[DEFAULT] transport_url: the {parsed.transport} transport cannot be "
                f"loaded: {exc}"]
    if not parsed.hosts:
        return unset
    return []


def socket_path(option: str, path: str) -> list[str]:
    """The status socket can be made at ``path``: short enough, its directory creatable."""
    if not path:
        return [f"{option} is empty"]
    if len(os.fsencode(path)) > UNIX_PATH_MAX:
        return [f"{option}: {path} is {len(os.fsencode(path))} bytes long; a unix socket "
                f"path may have at most {UNIX_PATH_MAX}"]
    return _writable_directory(option, os.path.dirname(os.path.abspath(path)))


def log_destination(log_file: str | None, log_dir: str | None) -> list[str]:
    """oslo.log opens the log file while setting up; a missing or unwritable directory would
    end the daemon there with a traceback."""
    if not log_file and not log_dir:
        return []
    if log_file and os.path.isabs(log_file) or not log_dir:
        path = os.path.abspath(log_file or "")
        option = "[DEFAULT] log_file"
    else:
        path = os.path.join(log_dir, log_file or "dpagent.log")
        option = "[DEFAULT] log_dir"
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        return [f"{option}: the directory {directory} does not exist"]
    if os.path.isdir(path):
        return [f"{option}: {path} is a directory"]
    target = path if os.path.exists(path) else directory
    if not os.access(target, os.W_OK):
        return [f"{option}: {target} is not writable"]
    return []


def _writable_directory(option: str, directory: str) -> list[str]:
    """``directory`` exists and is writable, or its nearest existing ancestor lets it be
    made (StatusServer makes it)."""
    probe = directory
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        return [f"{option}: {probe} is not a directory, so {directory} cannot be made"]
    if not os.access(probe, os.W_OK | os.X_OK):
        return [f"{option}: {probe} is not writable"
                + (f", so {directory} cannot be made" if probe != directory else "")]
    return []


def unknown_options(files: Iterable[str]) -> list[str]:
    """Options set in dpagent's own groups that no dpagent option answers to (typos, or
    options of neutron's agent that dpagent does not have): each is named in a warning."""
    from dpagent.conf.opts import list_opts

    known: dict[str, set[str]] = {}
    for group, opts in list_opts():
        names = known.setdefault(group, set())
        for opt in opts:
            names.add(opt.dest)
            names.update(d.name for d in opt.deprecated_opts
                         if d.name and d.group in (None, group))
    found = []
    for path in files:
        parser = configparser.RawConfigParser(strict=False)
        try:
            parser.read(path)
        except configparser.Error:
            continue  # oslo.config has judged the file's syntax already
        for group, names in sorted(known.items()):
            if parser.has_section(group):
                found += [f"{path}: [{group}] {name}: no such option, ignored"
                          for name in sorted(set(parser.options(group)) - names
                                             - set(parser.defaults()))]
    return found


def config_files(conf: cfg.ConfigOpts) -> list[str]:
    """The files oslo.config read: the ``--config-file`` ones, then ``--config-dir``'s."""
    files = list(conf.config_file or [])
    directory = conf.config_dir
    if directory and os.path.isdir(directory):
        files += sorted(os.path.join(directory, name) for name in os.listdir(directory)
                        if name.endswith(".conf"))
    return files

"""Files under a sysfs root: the one place that reads and writes them.

The root is configurable (``[sriov] sysfs_root``) so tests run against a fake tree with the real
layout.  A write is one ``write()`` system call on the file opened ``O_WRONLY|O_TRUNC`` -- what
``echo value > file`` does, without a shell -- because a sysfs ``store`` method acts once per
write() and sees only what that call carries (at most a page).  A short write is an error, never
retried: the kernel acted on a truncated command.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

PAGE_SIZE = 4096  # the most a sysfs store method receives from one write()


class Sysfs:
    """Reads and writes files under ``root``; paths are relative (``class/net/eth0/address``).

    Implements :class:`sriov.driver.SysfsAccess`.
    """

    def __init__(self, root: str | Path = "/sys") -> None:
        self.root = Path(root)

    def path(self, relative: str) -> Path:
        """The absolute path of ``relative``; absolute paths are refused (they escape the root)."""
        if relative.startswith("/"):
            raise ValueError(f"sysfs path {relative!r} must be relative to the sysfs root")
        return self.root / relative

    def read(self, relative: str) -> str:
        """The file's text without the trailing newline."""
        with open(self.path(relative), encoding="ascii", errors="replace") as file:
            return file.read().rstrip("\n")

    def write(self, relative: str, value: str) -> None:
        """Write ``value`` with exactly one write(); OSError (kernel errno) if refused or short."""
        data = value.encode("ascii")
        written = self._write_once(self.path(relative), data)
        if written != len(data):
            raise OSError(errno.EIO, f"short write: the kernel took {written} of {len(data)} "
                          f"bytes of {value.strip()!r}", str(self.path(relative)))

    def _write_once(self, path: Path, data: bytes) -> int:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            return os.write(fd, data)
        finally:
            os.close(fd)

    def exists(self, relative: str) -> bool:
        return self.path(relative).exists()

    def listdir(self, relative: str) -> list[str]:
        """Sorted entries of a directory, empty if it does not exist."""
        try:
            return sorted(os.listdir(self.path(relative)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def link_target_name(self, relative: str) -> str | None:
        """The last component of a symlink's target (``driver`` -> ``i40e``), None if no link."""
        try:
            return os.path.basename(os.readlink(self.path(relative)))
        except OSError:
            return None

    def resolve(self, relative: str) -> Path:
        """The canonical path (symlinks followed), e.g. of ``class/net/eth0/device``."""
        return self.path(relative).resolve()

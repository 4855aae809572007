"""What a pass did, or why it did not: collected by `optimize` for `--explain`."""

from __future__ import annotations

import functools
import os
from typing import Callable, Optional

import attrs

from fwc import ir


@attrs.frozen
class Note:
    pass_name: str
    level: str  # "info" | "warning"
    message: str
    loc: ir.Loc = ir.NOLOC

    def format(self) -> str:
        text = f"{self.loc}: {self.level}: [{self.pass_name}] {self.message}"
        line = source_line(self.loc)
        return text + ("\n    " + line if line else "")


Explain = Optional[Callable[[Note], None]]


def source_line(loc: ir.Loc) -> Optional[str]:
    """The text of the located line, when the file is readable (for warnings)."""
    if loc.line <= 0 or loc.file in ("", "-", "<input>"):
        return None
    try:
        st = os.stat(loc.file)
    except OSError:
        return None
    lines = _file_lines(loc.file, st.st_mtime_ns, st.st_size)
    return lines[loc.line - 1] if lines is not None and loc.line <= len(lines) else None


@functools.lru_cache(maxsize=8)
def _file_lines(path: str, mtime_ns: int, size: int) -> Optional[tuple[str, ...]]:
    """The file's lines, read once while it is unchanged (a lint of thousands of findings
    re-read the file per finding before)."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as f:
            return tuple(ln.rstrip("\r") for ln in f.read().split("\n"))
    except OSError:
        return None


class Notes:
    def __init__(self, pass_name: str, sink: Explain):
        self.pass_name, self.sink = pass_name, sink

    def info(self, message: str, loc: ir.Loc = ir.NOLOC) -> None:
        if self.sink is not None:
            self.sink(Note(self.pass_name, "info", message, loc))

    def warn(self, message: str, loc: ir.Loc = ir.NOLOC) -> None:
        if self.sink is not None:
            self.sink(Note(self.pass_name, "warning", message, loc))

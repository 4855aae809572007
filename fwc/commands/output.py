"""Writing fwc's outputs: all or nothing, and never clobbering what is not a plain file."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from typing import Mapping, Optional

from fwc import ir
from fwc.errors import FwcSyntaxError


def _fail(path: str, why: str) -> FwcSyntaxError:
    return FwcSyntaxError(f"cannot write output: {why}", ir.Loc(path))


def output_path(text: str) -> str:
    """The argparse type of -o: an empty path is a usage error (it used to mean stdout)."""
    if not text:
        import argparse
        raise argparse.ArgumentTypeError("empty path (leave -o out to write to stdout)")
    return text


def write_stdout(text: str) -> None:
    """The text on stdout; a closed or full stdout is an error, not a traceback (a reader
    that stops early, `| head`, is fine)."""
    out = sys.stdout
    if out is None:
        raise _fail("<stdout>", "standard output is closed")
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as e:
        raise _fail("<stdout>", getattr(e, "strerror", None) or str(e)) from None


def write_outputs(outputs: Mapping[Optional[str], str]) -> None:
    """Write every (path -> text) or none of them.  A path that is a symlink is written
    through (its target is replaced); a device, FIFO or socket is written into as it is
    (replacing it would clobber /dev/null); a regular file keeps its mode, a new one gets
    0666 less the umask.  Every target is checked, and every temporary file written, before
    the first one replaces anything."""
    plain = {p: t for p, t in outputs.items() if p not in (None, "-")}
    for p, t in outputs.items():
        if p in (None, "-"):
            write_stdout(t)
    staged: list[tuple[str, str]] = []
    specials: list[tuple[str, str]] = []
    try:
        for path, text in plain.items():
            try:
                # (the path itself, followed: /dev/stdout on a pipe resolves to no real path)
                st = os.stat(path)
            except FileNotFoundError:
                st = None
            except OSError as e:
                raise _fail(path, e.strerror) from None
            if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
                specials.append((path, text))  # /dev/null, a FIFO: written, never replaced
                continue
            real = os.path.realpath(path)
            if st is not None and stat.S_ISDIR(st.st_mode):
                raise _fail(path, "it is a directory")
            if st is not None and not stat.S_ISREG(st.st_mode):
                specials.append((path, text))  # /dev/null, a FIFO: written, never replaced
                continue
            d = os.path.dirname(real) or "."
            try:
                fd, tmp = tempfile.mkstemp(dir=d, prefix=".fwc-")
            except OSError as e:
                raise _fail(path, e.strerror) from None
            staged.append((tmp, real))
            mode = stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask()
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, mode)
    except OSError as e:
        _discard(staged)
        raise _fail(next(iter(plain), "<output>"), e.strerror or str(e)) from None
    except BaseException:
        _discard(staged)
        raise
    for tmp, real in staged:
        try:
            os.replace(tmp, real)
        except OSError as e:
            _discard([x for x in staged if os.path.exists(x[0])])
            raise _fail(real, e.strerror) from None
    for path, text in specials:
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise _fail(path, e.strerror) from None


def _discard(staged) -> None:
    for tmp, _ in staged:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m

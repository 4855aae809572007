"""Located errors.  Syntax errors exit 2; unsupported constructs and failed checks exit 1."""

from __future__ import annotations

from typing import Optional, Sequence

from fwc.ir import NOLOC, Loc


class FwcError(Exception):
    """An error the user must see as `FILE:LINE:COL: error: MESSAGE`."""

    exit_code = 1

    def __init__(self, message: str, loc: Loc = NOLOC, source_line: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.source_line = source_line

    def format(self, caret: bool = False) -> str:
        text = f"{self.loc}: error: {self.message}"
        if caret and self.source_line is not None and self.loc.col > 0:
            line = self.source_line.rstrip("\r\n")
            text += "\n" + line + "\n" + " " * (self.loc.col - 1) + "^"
        return text


class FwcSyntaxError(FwcError):
    """Malformed input or bad usage."""

    exit_code = 2


class Unsupported(FwcError):
    """A construct the front end or backend cannot express exactly."""

    exit_code = 1


class ErrorGroup(Exception):
    """Several located errors found in one pass; exit with the worst code."""

    def __init__(self, errors: Sequence[FwcError]):
        super().__init__("; ".join(e.format() for e in errors))
        self.errors = list(errors)

    @property
    def exit_code(self) -> int:
        return max(e.exit_code for e in self.errors)

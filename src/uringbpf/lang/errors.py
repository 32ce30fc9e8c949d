"""Errors of ``uringbpf.lang``: every one names the Python file and line it is about."""

from __future__ import annotations


class LangError(Exception):
    """Base of the errors that point at a line of a program's Python source."""

    def __init__(self, filename: str, line: int, message: str, detail: str = ""):
        self.filename = filename
        self.line = line
        self.message = message
        self.detail = detail
        super().__init__(f"{filename}:{line}: {message}")

    def __str__(self) -> str:
        head = f"{self.filename}:{self.line}: {self.message}"
        return head + ("\n" + self.detail if self.detail else "")


class LangCompileError(LangError):
    """The function uses something outside the subset, or its types do not fit."""


class LangVerifierError(LangError):
    """The verifier refused the compiled program; ``line`` is where the refused
    instruction came from, ``log`` the verifier log annotated with Python lines."""

    def __init__(self, filename: str, line: int, message: str, log: str = "", pc: int | None = None):
        super().__init__(filename, line, message)
        self.log = log
        self.pc = pc


class LangRuntimeError(LangError):
    """The compiled program failed at run time (an engine refused an access...)."""

    def __init__(self, filename: str, line: int, message: str, pc: int | None = None):
        super().__init__(filename, line, message)
        self.pc = pc

"""Errors of ``uringbpf.lang``: every one names the Python file and line it is about.

They are defined with the library's other exceptions in :mod:`uringbpf.errors`.
"""

from __future__ import annotations

from ..errors import LangCompileError, LangError, LangRuntimeError, LangVerifierError

__all__ = ["LangError", "LangCompileError", "LangVerifierError", "LangRuntimeError"]

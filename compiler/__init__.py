"""The Gatepost policy compiler: a policy directory in, a routing table artifact out."""

from .codes import Severity
from .diagnostics import Diagnostic, render_github, render_json, render_sarif, render_text
from .pipeline import CompileResult, compile_policy, compile_sources, load_diagnostics

__all__ = [
    "CompileResult",
    "Diagnostic",
    "Severity",
    "compile_policy",
    "compile_sources",
    "load_diagnostics",
    "render_github",
    "render_json",
    "render_sarif",
    "render_text",
]

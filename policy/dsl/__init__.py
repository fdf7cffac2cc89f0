"""The policy DSL (`*.gp`): a concise syntax for the same entities, parsed into the same data and
positions as YAML, so every later pass and diagnostic is shared."""

from .parser import parse_dsl

__all__ = ["parse_dsl"]

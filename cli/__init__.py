"""The `policy` command line, the composition root of Gatepost's layers.

    policy (the language) <- compiler -> artifact <- runtime
                                 \\__________ cli __________/

Only this package imports more than one layer; `tests/test_layering.py` keeps it so.
"""

from .main import main

__all__ = ["main"]

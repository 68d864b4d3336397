"""callscope's command line (``callscope ...``): thin commands over the packages."""

from .cli import main

__all__ = ["main"]

"""The optional C extension (the interceptors' hot path); everything else is in pyproject.toml.

``optional=True``: without a C compiler the install still succeeds and ``instrument``
runs its pure-Python reference path (slower; same records and counts).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "instrument._hotpath",
            ["instrument/_hotpath.c"],
            optional=True,
            extra_compile_args=["-O2"],
        )
    ]
)

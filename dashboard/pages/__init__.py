"""The dashboard's pages: one module each, with ``PATH``, ``layout(**url)`` and
``register(app, sources)`` for its callbacks."""

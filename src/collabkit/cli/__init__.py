"""The ``collabkit`` command line.

The root group ``cli`` and the entry point ``main`` live in :mod:`collabkit.cli.main`, which
adds each command explicitly. This package imports nothing, so importing one command module
(``collabkit.cli.train``) imports that module and the shared leaves (``options``, ``output``)
alone, and registers nothing.
"""

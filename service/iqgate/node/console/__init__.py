"""The technologist's web console: worklist, image view, feedback, export, operations.

It runs as a process of its own (:mod:`iqgate.node.console.server`), reads the spool
through :mod:`iqgate.node.store.queries` and the results the pipeline wrote, and keeps
its own SQLite index, feedback, kept images and audit log under ``console_dir``.
"""

"""Batch jobs: durable system workflows that act on every run a query matches.

* :mod:`store.batch.operations`: the pluggable operation kinds;
* :mod:`store.batch.job`: the ``baton.batch`` workflow and its page activity;
* :mod:`store.batch.service`: start, list, describe, stop;
* :mod:`store.batch.system_worker`: the worker each server runs for them.
"""

from store.batch.operations import OPERATIONS, Operation, register

__all__ = ["OPERATIONS", "Operation", "register"]

"""Durable operations: a table of work items claimed with a lease, retried, resumed after a crash.

Any service enqueues an operation in the same transaction as the row it concerns
(`queue.enqueue`), and runs a `Runner` with handlers for its kinds as a background task.
"""

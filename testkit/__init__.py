"""Scaffolding for tests and benchmarks: real components started on loopback, fixtures.

Nothing on a request path imports it.
"""

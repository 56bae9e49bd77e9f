"""The shared base every part builds on: errors, their HTTP mapping, model names, processes.

It imports no other part of tierserve (an import-linter contract in CI says so).
"""

"""Client-facing error texts keep the model and the reason, lose paths and endpoints."""

from __future__ import annotations

import pytest

from base.errors import NotFound, Unavailable
from pools.model_server.redact import public, redact


@pytest.mark.parametrize("message, expected", [
    ("Failed to load SavedModel at /srv/models/m/1: bad",
     "Failed to load SavedModel at <path>: bad"),
    ("listing s3://bucket/m: Could not connect to the endpoint URL: "
     '"http://10.0.0.5:9000/bucket?list-type=2"',
     'listing <uri>: Could not connect to the endpoint URL: "<uri>"'),
    ("open(/tmp/cache/m-1a2b/1/variables/variables.index); No such file",
     "open(<path>); No such file"),
    ("input 1/2 of x/y: wrong shape [2,3]", "input 1/2 of x/y: wrong shape [2,3]"),
    ("Servable not found for request: Specific(m, 3)",
     "Servable not found for request: Specific(m, 3)"),
])
def test_redact(message: str, expected: str) -> None:
    assert redact(message) == expected


def test_public_keeps_the_class_and_retry_hint() -> None:
    error = Unavailable("store at http://127.0.0.1:9000 unreachable", retry_after=3.0)
    clean = public(error)
    assert isinstance(clean, Unavailable) and clean.retry_after == 3.0
    assert clean.message == "store at <uri> unreachable" and str(clean) == clean.message
    assert error.message.startswith("store at http")  # the original is untouched, for the log
    same = NotFound("Could not find any versions of model m")
    assert public(same) is same

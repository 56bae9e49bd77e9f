"""Error texts for clients: the model and the reason, never a server path or an endpoint.

Load and listing errors come from TensorFlow, boto3 and the file system, whose messages
name export directories, cache folders and store URLs. Clients see them in model status
and reload answers; the full text goes to the log instead.
"""

from __future__ import annotations

import copy
import re

from base.errors import TierserveError

# A URL, without the punctuation that may follow it in a sentence ("...: ", "... .").
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://(?:[^\s'\"`,;()\[\]{}]*[^\s'\"`,;()\[\]{}:.])?")
# An absolute path: a slash that starts a word (not "a/b", not "1/2"), then more of it.
_PATH = re.compile(r"(?<![\w.\-/~<])/[^\s'\"`,;:()\[\]{}]+")


def redact(message: str) -> str:
    """`message` with URLs and absolute paths replaced by placeholders."""
    return _PATH.sub("<path>", _URL.sub("<uri>", message))


def public(error: TierserveError) -> TierserveError:
    """The same error (class, code, retry hint) with a redacted message."""
    text = redact(error.message)
    if text == error.message:
        return error
    clone = copy.copy(error)
    clone.message = text
    clone.args = (text,)
    return clone

"""The model store: TF Serving's folder layout in a local folder or S3 (MinIO, moto)."""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import unquote, urlparse

from base.errors import InvalidArgument
from pools.store.base import SAVED_MODEL_FILES, ModelStore, version_folders
from pools.store.local import LocalStore
from pools.store.s3 import S3Store

__all__ = ["SAVED_MODEL_FILES", "LocalStore", "ModelStore", "S3Store", "open_store",
           "split_base_path", "version_folders"]


def open_store(uri: str, *, endpoint_url: str | None = None, region: str | None = None,
               access_key: str | None = None, secret_key: str | None = None) -> ModelStore:
    """The store at `uri`: `s3://bucket/prefix`, `file:///path` or a plain local path.

    For S3, what is not given comes from the standard AWS environment variables and
    files (AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, ...).
    """
    if uri.startswith("s3://"):
        return S3Store(uri, endpoint_url=endpoint_url, region=region, access_key=access_key,
                       secret_key=secret_key)
    if uri.startswith("file://"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidArgument(f"file URI with a remote host: {uri!r}")
        return LocalStore(unquote(parsed.path))
    if "://" in uri:
        raise InvalidArgument(f"unsupported store URI {uri!r}: use s3://, file:// or a path")
    if not uri:
        raise InvalidArgument("empty store URI")
    return LocalStore(uri)


def split_base_path(base_path: str) -> tuple[str, str]:
    """A model's base path -> (its store's URI, the model folder's name).

    `s3://b/models/m1` -> ("s3://b/models", "m1"); `/srv/models/m1/` -> ("/srv/models", "m1").
    """
    if base_path.startswith("file://"):
        base_path = unquote(urlparse(base_path).path)
    stripped = base_path.rstrip("/")
    if stripped.startswith("s3://"):
        store, _, folder = stripped.rpartition("/")
        if store == "s3:/":  # the bucket itself, no model folder
            raise InvalidArgument(f"no model folder in {base_path!r}")
        return store, folder
    path = PurePosixPath(stripped)
    return str(path.parent), path.name

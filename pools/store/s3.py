"""A model store in S3 or anything speaking its API (MinIO, moto): `s3://bucket/prefix`.

Every boto3 call goes through `_call`, which turns botocore's errors into
tierserve's at this edge: unreachable endpoint -> Unavailable, missing bucket
or key -> NotFound, missing or rejected credentials -> Unavailable (the
server's set-up is at fault, not the request) with what to set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from base.errors import Internal, InvalidArgument, NotFound, Unavailable
from pools.store.base import ModelStore

T = TypeVar("T")

# Fail fast when the store is unreachable: a few seconds, never botocore's minutes.
CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 20.0
MAX_ATTEMPTS = 2
CHUNK_BYTES = 1024 * 1024
PARALLEL_FILES = 8

_NOT_FOUND_CODES = {"NoSuchBucket", "NoSuchKey", "404", "NotFound"}
# The store refused who we are: a set-up fault of the server, never of the request.
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                     "InvalidToken", "TokenRefreshRequired"}
_UNAVAILABLE_CODES = {"SlowDown", "ServiceUnavailable", "RequestTimeout", "Throttling",
                      "ThrottlingException", "InternalError", "503", "500"}


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b/` -> ("bucket", "a/b")."""
    if not uri.startswith("s3://"):
        raise InvalidArgument(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if not bucket:
        raise InvalidArgument(f"no bucket in {uri!r}")
    return bucket, prefix.strip("/")


def make_client(endpoint_url: str | None = None, region: str | None = None,
                access_key: str | None = None, secret_key: str | None = None) -> Any:
    """A boto3 S3 client; credentials given, else the standard AWS chain (env vars, files)."""
    import boto3
    from botocore.config import Config

    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") \
        or os.environ.get("AWS_ENDPOINT_URL") or None
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") \
        or "us-east-1"
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        max_pool_connections=32,
        # A custom endpoint (MinIO, moto) has no per-bucket DNS names.
        s3={"addressing_style": "path"} if endpoint_url else None)
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url, region_name=region, config=config,
        aws_access_key_id=access_key, aws_secret_access_key=secret_key)


# Said to clients (through the router): what an operator sets, never the endpoint or bucket.
NO_CREDENTIALS = ("the model store has no credentials: set AWS_ACCESS_KEY_ID and "
                  "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) for the cold pool and model servers; "
                  "for MinIO also AWS_ENDPOINT_URL")
BAD_CREDENTIALS = ("the model store rejected its credentials ({code}): check "
                   "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) of the cold pool "
                   "and model servers; for MinIO also AWS_ENDPOINT_URL")


def convert_error(exc: Exception, what: str) -> Exception:
    """The tierserve error for a botocore exception (others pass through unchanged)."""
    from botocore import exceptions as bex

    if isinstance(exc, bex.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = f"{what}: {code} {error.get('Message', '')}".strip()
        if code in _CREDENTIAL_CODES:
            return Unavailable(BAD_CREDENTIALS.format(code=code))
        if code in _NOT_FOUND_CODES:
            return NotFound(message)
        if code in _UNAVAILABLE_CODES:
            return Unavailable(message)
        return Internal(message)
    if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError):
        return Unavailable(NO_CREDENTIALS)
    if isinstance(exc, bex.BotoCoreError):
        # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ...
        return Unavailable(f"{what}: {exc}")
    return exc


class S3Store(ModelStore):
    def __init__(self, uri: str, *, endpoint_url: str | None = None, region: str | None = None,
                 access_key: str | None = None, secret_key: str | None = None,
                 client: Any = None) -> None:
        self.bucket, self.prefix = parse_s3_uri(uri)
        self.uri = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.client = client or make_client(endpoint_url, region, access_key, secret_key)

    def model_uri(self, model: str) -> str:
        return f"{self.uri}/{model}"

    def _key(self, *parts: str) -> str:
        """The key prefix of a folder, ending in '/' (or '' for the bucket's root)."""
        return "".join(f"{part}/" for part in (self.prefix, *parts) if part)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except Exception as exc:
            converted = convert_error(exc, what)
            if converted is exc:
                raise
            raise converted from exc

    def _pages(self, what: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=self.bucket, **kwargs))
        while True:
            page = self._call(what, lambda: next(pages, None))
            if page is None:
                return
            yield page

    def _subfolders(self, prefix: str) -> tuple[list[str], bool]:
        """Names of the 'folders' right under `prefix`, and whether anything is there."""
        names: list[str] = []
        anything = False
        for page in self._pages(f"listing {self.uri}", Prefix=prefix, Delimiter="/"):
            anything = anything or bool(page.get("Contents") or page.get("CommonPrefixes"))
            names.extend(p["Prefix"][len(prefix):].rstrip("/")
                         for p in page.get("CommonPrefixes", []))
        return names, anything

    def _model_folders(self) -> list[str]:
        return self._subfolders(self._key())[0]

    def _version_folder_names(self, model: str) -> list[str]:
        names, anything = self._subfolders(self._key(model))
        if not anything:
            raise NotFound(f"model {model!r} not found in {self.uri}")
        return names

    def _objects(self, model: str, folder: str) -> Iterator[tuple[PurePosixPath, str, int]]:
        """(relative path, key, size) of every file under a version folder."""
        prefix = self._key(model, folder)
        for page in self._pages(f"listing {self.uri}/{model}/{folder}", Prefix=prefix):
            for obj in page.get("Contents", []):
                key: str = obj["Key"]
                if key.endswith("/"):  # a folder marker, not a file
                    continue
                rel = key[len(prefix):]
                parts = rel.split("/")
                if any(part in ("", ".", "..") for part in parts):
                    raise InvalidArgument(f"unsafe object key {key!r} in {self.uri}")
                yield PurePosixPath(*parts), key, int(obj.get("Size", 0))

    def _folder_size(self, model: str, folder: str) -> int:
        return sum(size for _, _, size in self._objects(model, folder))

    def _fetch_folder(self, model: str, folder: str, dest: Path) -> None:
        root = dest.resolve()
        jobs: list[tuple[str, Path]] = []
        for rel, key, _ in self._objects(model, folder):
            target = root.joinpath(*rel.parts)
            if not target.resolve().is_relative_to(root):
                raise InvalidArgument(f"object key {key!r} leads outside {dest}")
            target.parent.mkdir(parents=True, exist_ok=True)
            jobs.append((key, target))
        # A SavedModel is a handful of files: fetch them side by side, since each GET costs
        # a round trip. Leaving the pool waits for every started GET, so none writes into
        # the temporary folder after the caller has removed it.
        with ThreadPoolExecutor(max_workers=min(PARALLEL_FILES, max(1, len(jobs)))) as pool:
            futures = [pool.submit(self._download_file, key, target) for key, target in jobs]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            for future in done:
                future.result()  # raises the first failure

    def _download_file(self, key: str, target: Path) -> None:
        # One GET streamed to disk: model files are small to medium, and download_file's
        # transfer manager (a thread pool per call) costs more than it saves for them.
        def fetch() -> None:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                with open(target, "wb") as out:
                    for chunk in body.iter_chunks(CHUNK_BYTES):
                        out.write(chunk)
            finally:
                body.close()

        self._call(f"downloading s3://{self.bucket}/{key}", fetch)

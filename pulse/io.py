"""Local-or-S3 paths: the one place that touches data files.

Paths are plain local paths or ``s3://bucket/key`` URIs. S3 goes through
``pyarrow.fs.S3FileSystem``; its endpoint and credentials come from a
``StorageOptions`` (part of every job config) or the usual AWS environment
variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_REGION``), so the same code runs against AWS, MinIO or a local moto server.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict


class StorageOptions(BaseModel):
    """How to reach object storage; empty fields fall back to the AWS environment variables."""

    model_config = ConfigDict(extra="forbid")

    endpoint_url: str | None = None
    region: str | None = None
    access_key_env: str = "AWS_ACCESS_KEY_ID"
    secret_key_env: str = "AWS_SECRET_ACCESS_KEY"
    anonymous: bool = False


def is_remote(path: str | os.PathLike) -> bool:
    return str(path).startswith("s3://")


def join(base: str | os.PathLike, *parts: str) -> str:
    base = str(base)
    if is_remote(base):
        return posixpath.join(base, *parts)
    return str(Path(base, *parts))


def _s3_filesystem(storage: StorageOptions | None) -> pafs.S3FileSystem:
    storage = storage or StorageOptions()
    endpoint = storage.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    kwargs: dict = {"region": storage.region or os.environ.get("AWS_REGION", "us-east-1")}
    if storage.anonymous:
        kwargs["anonymous"] = True
    else:
        access = os.environ.get(storage.access_key_env)
        secret = os.environ.get(storage.secret_key_env)
        if access and secret:
            kwargs["access_key"] = access
            kwargs["secret_key"] = secret
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs["endpoint_override"] = host or scheme
        kwargs["scheme"] = scheme if host else "https"
    return pafs.S3FileSystem(**kwargs)


def filesystem(
    path: str | os.PathLike, storage: StorageOptions | Folder | None = None
) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem for ``path`` and the path inside it.

    ``storage`` (here and in every function of this module) is the job's ``StorageOptions``,
    resolved now from this process's environment, or a ``Folder`` made on the driver: its already
    resolved filesystem (endpoint, credentials) then serves every path of its kind (``s3://`` or
    local), which is how Ray tasks and actors reach storage whatever their own environment holds.
    """
    text = str(path)
    remote = is_remote(text)
    if isinstance(storage, Folder):
        if remote == is_remote(storage.uri):
            return storage.fs, text[len("s3://") :] if remote else str(Path(text).absolute())
        storage = storage.storage
    if remote:
        return _s3_filesystem(storage), text[len("s3://") :]
    return pafs.LocalFileSystem(), str(Path(text).absolute())


class Folder:
    """A local or ``s3://`` folder as one picklable handle, the way every writer reaches storage.

    The pyarrow filesystem is resolved once, on the driver, with the endpoint and the credentials
    of the job's ``storage:`` (or the ``AWS_*`` variables); Ray tasks and actors that receive the
    Folder write with exactly those, whatever their own environment holds.
    """

    def __init__(self, uri: str | os.PathLike, storage: StorageOptions | Folder | None = None):
        self.uri = str(uri)
        self.storage = storage.storage if isinstance(storage, Folder) else storage
        self.fs, self.root = filesystem(self.uri, storage)

    def __repr__(self) -> str:
        return f"Folder({self.uri!r})"

    def path(self, *parts: str) -> str:
        """The URI (or local path) of ``parts`` inside this folder."""
        return join(self.uri, *parts)

    def sub(self, *parts: str) -> Folder:
        """A sub-folder that shares this folder's resolved filesystem."""
        child = object.__new__(Folder)
        child.uri, child.fs, child.root = self.path(*parts), self.fs, posixpath.join(self.root, *parts)
        child.storage = self.storage
        return child

    def inner(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.inner(*parts)).type != pafs.FileType.NotFound

    def write_bytes(self, data: bytes, *parts: str) -> None:
        target = self.inner(*parts)
        self.fs.create_dir(posixpath.dirname(target), recursive=True)
        write_whole(self.fs, target, data)

    def write_text(self, text: str, *parts: str) -> None:
        self.write_bytes(text.encode("utf-8"), *parts)

    def write_parquet(self, table: pa.Table, *parts: str) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self.write_bytes(sink.getvalue().to_pybytes(), *parts)

    def read_bytes(self, *parts: str) -> bytes:
        with self.fs.open_input_stream(self.inner(*parts)) as stream:
            return stream.read()

    def list_files(self, pattern: str = "*", *parts: str) -> list[str]:
        """Files under ``parts`` matching ``pattern``, relative to this folder, sorted."""
        selector = pafs.FileSelector(self.inner(*parts), recursive=True, allow_not_found=True)
        return sorted(
            posixpath.relpath(item.path, self.root)
            for item in self.fs.get_file_info(selector)
            if item.type == pafs.FileType.File and fnmatch.fnmatch(item.base_name, pattern)
        )


def exists(path: str | os.PathLike, storage: StorageOptions | None = None) -> bool:
    fs, inner = filesystem(path, storage)
    return fs.get_file_info(inner).type != pafs.FileType.NotFound


def is_dir(path: str | os.PathLike, storage: StorageOptions | None = None) -> bool:
    fs, inner = filesystem(path, storage)
    return fs.get_file_info(inner).type == pafs.FileType.Directory


def makedirs(path: str | os.PathLike, storage: StorageOptions | None = None) -> None:
    fs, inner = filesystem(path, storage)
    fs.create_dir(inner, recursive=True)


def read_bytes(path: str | os.PathLike, storage: StorageOptions | None = None) -> bytes:
    fs, inner = filesystem(path, storage)
    with fs.open_input_stream(inner) as stream:
        return stream.read()


def read_text(path: str | os.PathLike, storage: StorageOptions | None = None, encoding: str = "utf-8") -> str:
    return read_bytes(path, storage).decode(encoding)


def write_bytes(path: str | os.PathLike, data: bytes, storage: StorageOptions | None = None) -> None:
    fs, inner = filesystem(path, storage)
    parent = posixpath.dirname(inner) if is_remote(path) else str(Path(inner).parent)
    if parent:
        fs.create_dir(parent, recursive=True)
    write_whole(fs, inner, data)


def write_whole(fs: pafs.FileSystem, target: str, data: bytes) -> None:
    """Write ``target`` so that readers (and a rerun after a crash) see the old file or the whole new
    one, never a torn one: locally through a hidden temporary file renamed over the target; on S3 an
    object only appears when its upload completes."""
    if not isinstance(fs, pafs.LocalFileSystem):
        with fs.open_output_stream(target) as stream:
            stream.write(data)
        return
    directory, name = posixpath.split(target)
    partial = posixpath.join(directory, f".{name}.{uuid.uuid4().hex}.partial")  # hidden: readers skip it
    try:
        with fs.open_output_stream(partial) as stream:
            stream.write(data)
        fs.move(partial, target)
    except BaseException:
        if fs.get_file_info(partial).type == pafs.FileType.File:
            fs.delete_file(partial)
        raise


def write_text(path: str | os.PathLike, text: str, storage: StorageOptions | None = None) -> None:
    write_bytes(path, text.encode("utf-8"), storage)


def list_files(
    path: str | os.PathLike, pattern: str = "*", storage: StorageOptions | None = None, recursive: bool = True
) -> list[str]:
    """Files under ``path`` whose name matches ``pattern``, as full paths/URIs, sorted."""
    fs, inner = filesystem(path, storage)
    info = fs.get_file_info(pafs.FileSelector(inner, recursive=recursive, allow_not_found=True))
    prefix = "s3://" if is_remote(path) else ""
    files = [
        prefix + item.path
        for item in info
        if item.type == pafs.FileType.File and fnmatch.fnmatch(item.base_name, pattern)
    ]
    return sorted(files)


def delete(path: str | os.PathLike, storage: StorageOptions | None = None) -> None:
    fs, inner = filesystem(path, storage)
    info = fs.get_file_info(inner)
    if info.type == pafs.FileType.Directory:
        fs.delete_dir(inner)
    elif info.type == pafs.FileType.File:
        fs.delete_file(inner)


def write_parquet(table: pa.Table, path: str | os.PathLike, storage: StorageOptions | None = None) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_bytes(path, sink.getvalue().to_pybytes(), storage)


def read_parquet(path: str | os.PathLike, storage: StorageOptions | None = None) -> pa.Table:
    """One Parquet file, or every ``*.parquet`` under a folder, as one table."""
    fs, inner = filesystem(path, storage)
    return pq.read_table(inner, filesystem=fs)


def count_parquet_rows(path: str | os.PathLike, storage: StorageOptions | None = None) -> int:
    """Rows in a Parquet file or every ``*.parquet`` under a folder, from the footers (no data read)."""
    import pyarrow.dataset as pads

    fs, inner = filesystem(path, storage)
    if is_dir(path, storage):
        files = [f.removeprefix("s3://") for f in list_files(path, "*.parquet", storage)]
    else:
        files = [inner] if exists(path, storage) else []
    return pads.dataset(files, filesystem=fs, format="parquet").count_rows() if files else 0


def ray_read_args(path: str | os.PathLike, storage: StorageOptions | None = None) -> dict:
    """``paths=`` and ``filesystem=`` keyword arguments for ``ray.data.read_*`` / ``write_*``."""
    fs, inner = filesystem(path, storage)
    return {"paths": inner, "filesystem": fs}


def ray_write_args(path: str | os.PathLike, storage: StorageOptions | None = None) -> dict:
    fs, inner = filesystem(path, storage)
    return {"path": inner, "filesystem": fs}


STORAGE_HINT = (
    "check the job's storage: section (endpoint_url, region, anonymous, access_key_env, secret_key_env) "
    "and the AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION variables"
)
_UNREACHABLE = ("NETWORK_CONNECTION", "curlCode", "Couldn't connect", "Could not resolve", "timed out")
_REFUSED = (
    *(
        "ACCESS_DENIED",
        "AccessDenied",
        "INVALID_ACCESS_KEY_ID",
        "InvalidAccessKeyId",
        "SIGNATURE_DOES_NOT_MATCH",
    ),
    *("SignatureDoesNotMatch", "EXPIRED_TOKEN", "ExpiredToken", "403", "No credentials", "UNAUTHORIZED"),
)


def storage_error_message(exc: BaseException) -> str | None:
    """One line for an S3 access error anywhere in ``exc``'s cause chain, with a hint; else None."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        text = str(error).strip()
        if isinstance(error, OSError) and ("AWS Error" in text or "S3" in text or "s3://" in text):
            detail = " ".join(text.split())
            detail = detail if len(detail) <= 300 else detail[:297] + "..."
            if any(word in text for word in _UNREACHABLE):
                what = "cannot reach the object store"
            elif any(word in text for word in _REFUSED):
                what = "the object store refused access"
            else:
                what = "object store error"
            return f"{what}: {detail} ({STORAGE_HINT})"
        error = error.__cause__ or error.__context__
    return None

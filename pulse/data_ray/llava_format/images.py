"""Image bytes for LLaVA rows: from a folder, or straight from ``.tar`` / ``.tar.gz`` shards.

Shards are never extracted. A one-time scan builds an index of their members (name -> shard,
data offset, size) in an on-disk SQLite file, so memory stays flat for millions of members and
a rerun reuses the index. The trade-off between the two archive kinds:

- ``.tar``: the scan reads only the 512-byte headers (seeking over the data), and each image is
  then one ranged read at its offset: random access, rows are kept in input order.
- ``.tar.gz``: gzip cannot seek, so the scan decompresses every shard once, and so would any
  random read. Images are therefore read by one sequential pass per shard (:meth:`TarShards.
  iter_shard`): the importer parks rows that need a ``.tar.gz`` image in an on-disk queue and
  emits them shard by shard, i.e. in shard order, not input order. Each shard is decompressed
  twice in all (index + read) instead of once per image.
"""

from __future__ import annotations

import os
import posixpath
import sqlite3
import tarfile
from collections.abc import Iterator

from pulse import io


def member_key(name: str) -> str:
    """The lookup form of a path inside an archive or a row's ``image`` field."""
    name = name.replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


class FolderImages:
    """Images under a folder (local or ``s3://``), addressed by the row's relative path."""

    def __init__(self, root: str, storage: io.StorageOptions | None = None):
        self.root = root
        self.storage = storage

    def locate(self, path: str) -> str | None:
        return "folder"

    def read(self, path: str) -> bytes:
        try:
            return io.read_bytes(io.join(self.root, member_key(path)), self.storage)
        except (OSError, FileNotFoundError) as exc:
            raise KeyError(f"{path}: {exc}") from None


def is_gzip_shard(path: str) -> bool:
    return path.endswith((".tar.gz", ".tgz"))


class TarShards:
    """Members of ``.tar``/``.tar.gz`` shards through an on-disk index built by one scan per shard."""

    def __init__(self, shards: list[str], index_path: str, storage: io.StorageOptions | None = None):
        if not shards:
            raise ValueError("TarShards needs at least one shard")
        self.shards = list(shards)
        self.storage = storage
        os.makedirs(os.path.dirname(os.path.abspath(index_path)), exist_ok=True)
        self.db = sqlite3.connect(index_path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS members (name TEXT PRIMARY KEY, shard INTEGER, offset INTEGER, size INTEGER)"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS shards (path TEXT PRIMARY KEY, members INTEGER)")
        self._open: dict[int, object] = {}
        self.index_counts = {path: self._index(i, path) for i, path in enumerate(self.shards)}

    def _index(self, shard: int, path: str) -> int:
        done = self.db.execute("SELECT members FROM shards WHERE path = ?", (path,)).fetchone()
        if done:
            return int(done[0])
        fs, inner = io.filesystem(path, self.storage)
        count = 0
        if is_gzip_shard(path):
            with (
                fs.open_input_stream(inner, compression=None) as stream,
                tarfile.open(fileobj=stream, mode="r|gz") as archive,
            ):
                count = self._insert(shard, archive, sequential=True)
        else:
            with fs.open_input_file(inner) as handle, tarfile.open(fileobj=handle, mode="r:") as archive:
                count = self._insert(shard, archive, sequential=False)
        self.db.execute("INSERT INTO shards VALUES (?, ?)", (path, count))
        self.db.commit()
        return count

    def _insert(self, shard: int, archive: tarfile.TarFile, sequential: bool) -> int:
        count, batch = 0, []
        for member in archive:
            if not member.isfile():
                continue
            batch.append(
                (member_key(member.name), shard, -1 if sequential else member.offset_data, member.size)
            )
            count += 1
            if len(batch) >= 10_000:
                self.db.executemany("INSERT OR IGNORE INTO members VALUES (?, ?, ?, ?)", batch)
                batch = []
            archive.members = []  # the header list would otherwise grow with the shard
        self.db.executemany("INSERT OR IGNORE INTO members VALUES (?, ?, ?, ?)", batch)
        return count

    def locate(self, path: str) -> str | None:
        """The shard holding ``path``, or None."""
        hit = self.db.execute("SELECT shard FROM members WHERE name = ?", (member_key(path),)).fetchone()
        return self.shards[hit[0]] if hit else None

    def read(self, path: str) -> bytes:
        """One member of a ``.tar`` shard by a ranged read; ``.tar.gz`` members go through iter_shard."""
        hit = self.db.execute(
            "SELECT shard, offset, size FROM members WHERE name = ?", (member_key(path),)
        ).fetchone()
        if hit is None:
            raise KeyError(f"{path}: in no shard")
        shard, offset, size = hit
        if offset < 0:
            raise ValueError(f"{path}: is in {self.shards[shard]}, which is read sequentially (iter_shard)")
        handle = self._open.get(shard)
        if handle is None:
            fs, inner = io.filesystem(self.shards[shard], self.storage)
            handle = self._open[shard] = fs.open_input_file(inner)
        return handle.read_at(size, offset)

    def iter_shard(self, shard_path: str) -> Iterator[tuple[str, bytes]]:
        """(member key, bytes) of every file in one shard, in archive order (one sequential read)."""
        fs, inner = io.filesystem(shard_path, self.storage)
        mode = "r|gz" if is_gzip_shard(shard_path) else "r|"
        with (
            fs.open_input_stream(inner, compression=None) as stream,
            tarfile.open(fileobj=stream, mode=mode) as archive,
        ):
            for member in archive:
                if member.isfile():
                    handle = archive.extractfile(member)
                    yield member_key(member.name), handle.read() if handle else b""
                archive.members = []

    def close(self) -> None:
        for handle in self._open.values():
            handle.close()
        self._open.clear()
        self.db.close()


def shard_paths(spec: str | list[str], storage: io.StorageOptions | None = None) -> list[str]:
    """Shard files from a list of paths, or every ``*.tar``/``*.tar.gz``/``*.tgz`` under a folder."""
    if isinstance(spec, list):
        return list(spec)
    if io.is_dir(spec, storage):
        found = [p for p in io.list_files(spec, "*", storage) if p.endswith((".tar", ".tar.gz", ".tgz"))]
        return sorted(found, key=lambda p: (len(posixpath.basename(p)), p))  # shard_2 before shard_10
    return [spec]

"""Durable files under the spool's ``objects/`` folder: written, fsynced, then named."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

Buffer = bytes | bytearray | memoryview

_UID = re.compile(r"^[0-9.]{1,64}$")
SHARDS = tuple(f"{i:02x}" for i in range(256))
"""The folders under ``objects/``, made when the spool opens: a file goes to the one its
random name suffix starts with, so no C-STORE waits for a folder to be made durable."""


def write_all(fd: int, parts: Sequence[Buffer]) -> int:
    """Write every buffer to ``fd`` without copying it; the bytes written."""
    size = 0
    for part in parts:
        view = memoryview(part).cast("B")
        size += len(view)
        while view:
            view = view[os.write(fd, view) :]
    return size


def fsync_directory(path: Path) -> None:
    """Make a folder's entries durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ObjectFiles:
    """The received files: one private, complete, durable file per accepted instance."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        for folder in (root, root / "tmp", self.objects):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)
        self._make_shards()

    def _make_shards(self) -> None:
        """Make the missing folders of :data:`SHARDS`, durably."""
        made = False
        for shard in SHARDS:
            try:
                (self.objects / shard).mkdir(mode=0o700)
            except FileExistsError:
                continue
            made = True
        if made:
            fsync_directory(self.objects)

    def new_path(self, sop_instance_uid: str) -> Path:
        """A fresh, unique file name for an instance (its UID when that is a plain UID)."""
        name = (
            sop_instance_uid
            if _UID.match(sop_instance_uid)
            else uuid.uuid5(uuid.NAMESPACE_OID, sop_instance_uid).hex
        )
        suffix = uuid.uuid4().hex[:12]
        return self.objects / suffix[:2] / f"{name}.{suffix}.dcm"

    def relative(self, path: Path) -> str:
        """``path`` as the job table records it (relative to the spool root)."""
        return str(path.relative_to(self.root))

    def write_durably(self, final: Path, parts: Sequence[Buffer]) -> int:
        """Write ``parts`` to ``final`` durably; its size. Nothing is left on error.

        The data goes to an anonymous file in ``final``'s folder (``O_TMPFILE``), is
        fsynced, and only then gets its name (``linkat``), so a name under ``objects/``
        always holds a complete file and a crash leaves no half-written one; then the
        folder is fsynced. Where ``O_TMPFILE`` is missing: a temporary file in the same
        folder, fsynced and renamed (a rename within one folder, so concurrent
        arrivals never queue on the file system's cross-folder rename lock).
        """
        folder = final.parent
        if not folder.is_dir():
            folder.mkdir(exist_ok=True, mode=0o700)
            fsync_directory(folder.parent)
        folder_fd = os.open(folder, os.O_RDONLY)
        try:
            try:
                fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o600, dir_fd=folder_fd)
            except (AttributeError, OSError):
                return self._write_and_rename(final, parts)
            try:
                size = write_all(fd, parts)
                os.fsync(fd)
                # linkat(AT_SYMLINK_FOLLOW): a plain link() of /proc/self/fd/N fails (EXDEV)
                os.link(f"/proc/self/fd/{fd}", final.name, dst_dir_fd=folder_fd)
            finally:
                os.close(fd)
            os.fsync(folder_fd)
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        finally:
            os.close(folder_fd)
        return size

    def _write_and_rename(self, final: Path, parts: Sequence[Buffer]) -> int:
        tmp = final.with_name(f".{uuid.uuid4().hex}.part")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                size = write_all(fd, parts)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
            fsync_directory(final.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            final.unlink(missing_ok=True)
            raise
        return size

    def remove_temporary(self) -> int:
        """Delete temporary and half-written files (never acknowledged); how many."""
        stale = [*(self.root / "tmp").iterdir(), *self.objects.glob("*/.*.part")]
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def complete(self) -> Iterator[Path]:
        """Every complete received file, in name order."""
        return iter(sorted(self.objects.glob("*/*.dcm")))

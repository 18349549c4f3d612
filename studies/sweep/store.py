"""The results store: one JSON line per finished run, appended, never rewritten.

A store is a JSON-lines file (``noise_sweep.jsonl``). Each line this module writes is a
finished run: ``{"store": "photon-dfa sweep", "format", "key", "settings", "label",
"result", "written"}``, its ``key`` the SHA-256 of its resolved settings
(:func:`~studies.sweep.spec.settings_key`). Reading keeps the first record of each key.

What the store promises
-----------------------
* **It never deletes or rewrites a line.** Runs are appended; a line that is not a run of
  the current format (an older format, a line of another program, a note, a write cut
  short) is left where it is, counted, and named in a warning; it is never used.
* **Concurrent writers neither duplicate work silently nor lose a line.** Appends hold an
  exclusive lock (``STORE.lock``, :func:`fcntl.flock`) and go through one ``write`` of a
  whole line; before running a run, a writer *claims* its key (``STORE.claims/KEY``,
  created exclusively): a second writer skips a run claimed by a live process and
  waits for its line. A claim whose process is gone (same host), or older than
  :data:`STALE_CLAIM_S` (another host), is taken over.
* **A failed write leaves the store as it was.** The file's length is noted under the
  lock; if the write or the sync fails (a full disk), the file is cut back to it and a
  :class:`StoreError` names the store and the reason.
* **A store that cannot be read is named with the reason** (a directory, no permission,
  text that is not UTF-8), as a :class:`StoreError` (a ValueError: the command-line fronts
  end on it with one line and exit status 2).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import json
import os
import pathlib
import socket
import time
import warnings

from photon.support import jsonio

from .spec import RECORD_FORMAT, settings_key

try:  # POSIX file locks; elsewhere appends are unlocked (one writer per store)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = ["StoreError", "StoreContents", "ResultStore", "STORE_NAME", "STALE_CLAIM_S"]

STORE_NAME = "photon-dfa sweep"
#: A claim of another host older than this (seconds) is taken over.
STALE_CLAIM_S = 6 * 3600.0


class StoreError(ValueError):
    """A results store that cannot be read or written, naming it and the reason."""


@dataclasses.dataclass
class StoreContents:
    """What a read found.

    Attributes
    ----------
    records
        Runs of the current format, the first of each key, in file order.
    other_lines
        Lines kept but not used: ``{"line": number, "why": reason}`` (older formats,
        foreign lines, writes cut short, duplicates).
    """

    records: list
    other_lines: list

    def by_key(self) -> dict:
        """``key -> record``."""
        return {record["key"]: record for record in self.records}


def _why_not_a_run(record) -> str | None:
    """None for a run of the current format, else why not."""
    if not isinstance(record, dict) or record.get("store") != STORE_NAME:
        return "not a run of this store"
    if record.get("format") != RECORD_FORMAT:
        return f"format {record.get('format')!r} (this code reads {RECORD_FORMAT})"
    settings = record.get("settings")
    if not isinstance(settings, dict) or record.get("key") != settings_key(settings):
        return "its key does not match its settings"
    if not isinstance(record.get("result"), dict) or not isinstance(record.get("label"), dict):
        return "no result"
    return None


class ResultStore:
    """A JSON-lines results store at ``path`` (see the module).

    Parameters
    ----------
    path
        The store's file (created on the first append, with its folder).
    """

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.claims = self.path.with_name(self.path.name + ".claims")
        self._warned = False
        if self.path.exists() and self.path.is_dir():
            raise StoreError(f"store {str(self.path)!r}: is a directory: expected a JSON-lines "
                             "results file")

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    # ------------------------------------------------------------------ reading
    def _read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""
        except IsADirectoryError:
            raise StoreError(f"store {str(self.path)!r}: is a directory: expected a JSON-lines "
                             "results file") from None
        except PermissionError:
            raise StoreError(f"store {str(self.path)!r}: permission denied: expected a "
                             "results file this user can read") from None
        except OSError as error:
            raise StoreError(f"store {str(self.path)!r}: cannot be read "
                             f"({error.strerror or error})") from None

    def read(self, warn: bool = True) -> StoreContents:
        """Every run of the current format, and the lines kept but not used.

        Raises
        ------
        StoreError
            The store is a directory, cannot be read, or is not UTF-8 text (naming the
            line and byte).
        """
        data = self._read_bytes()
        records, other, seen = [], [], set()
        for number, raw in enumerate(data.splitlines(keepends=True), start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise StoreError(
                    f"store {str(self.path)!r}: line {number} is not UTF-8 text (byte "
                    f"{raw[error.start]:#04x} at column {error.start + 1}): expected a "
                    "JSON-lines results file") from None
            if not line.strip():
                continue
            if not line.endswith("\n"):
                other.append({"line": number, "why": "a write cut short (no line end)"})
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                other.append({"line": number, "why": "not JSON"})
                continue
            why = _why_not_a_run(record)
            if why is None and record["key"] in seen:
                why = "a second record of a key (the first is used)"
            if why is not None:
                other.append({"line": number, "why": why})
                continue
            seen.add(record["key"])
            records.append(record)
        if other and warn and not self._warned:
            self._warned = True
            kinds = sorted({entry["why"] for entry in other})
            warnings.warn(f"store {str(self.path)!r}: {len(other)} line(s) kept as they are and "
                          f"not used ({'; '.join(kinds)})", UserWarning, stacklevel=2)
        return StoreContents(records, other)

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = open(self.lock_path, "a+b")
        except OSError as error:
            raise StoreError(f"store {str(self.path)!r}: its lock file cannot be opened "
                             f"({error.strerror or error})") from None
        with handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def append(self, record: dict) -> None:
        """Append one run as one line, atomically with respect to other writers.

        A file whose last line was cut short gets a line end first (the cut line stays,
        unused). On any failure the file is cut back to its length before the append.

        Raises
        ------
        StoreError
            The write failed (naming the reason, e.g. no space left on the device); the
            store is as it was.
        """
        line = jsonio.dumps(record, indent=None)
        if "\n" in line:
            raise ValueError("record: its JSON holds a line end: expected one line")
        payload = (line + "\n").encode("utf-8")
        with self._locked():
            try:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except IsADirectoryError:
                raise StoreError(f"store {str(self.path)!r}: is a directory: expected a "
                                 "JSON-lines results file") from None
            except OSError as error:
                raise StoreError(f"store {str(self.path)!r}: cannot be written "
                                 f"({error.strerror or error})") from None
            try:
                size = os.fstat(descriptor).st_size
                if size and not self._ends_with_newline(size):
                    payload = b"\n" + payload
                try:
                    self._write_all(descriptor, payload)
                    os.fsync(descriptor)
                except OSError as error:
                    with contextlib.suppress(OSError):
                        os.ftruncate(descriptor, size)
                    raise StoreError(f"store {str(self.path)!r}: the run could not be written "
                                     f"({error.strerror or error}); the store is as it was "
                                     f"({size} bytes)") from None
            finally:
                os.close(descriptor)

    def _ends_with_newline(self, size: int) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(size - 1)
            return handle.read(1) == b"\n"

    @staticmethod
    def _write_all(descriptor: int, payload: bytes) -> None:
        view = memoryview(payload)
        while view:
            written = os.write(descriptor, view)
            if written <= 0:  # pragma: no cover
                raise OSError(errno.EIO, "write returned no progress")
            view = view[written:]

    # ------------------------------------------------------------------ claims
    def _claim_path(self, key: str) -> pathlib.Path:
        return self.claims / f"{key}.claim"

    @staticmethod
    def _owner() -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid(),
                "time": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds")}

    def claim(self, key: str) -> bool:
        """Claim the run ``key`` for this process; False when a live writer holds it."""
        try:
            self.claims.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"store {str(self.path)!r}: its claims folder cannot be made "
                             f"({error.strerror or error})") from None
        path = self._claim_path(key)
        for _ in range(2):
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if not self._stale(path):
                    return False
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(self._owner(), handle)
            return True
        return False

    def is_claimed(self, key: str) -> bool:
        """Whether a live writer holds the claim of ``key``."""
        path = self._claim_path(key)
        return path.exists() and not self._stale(path)

    def release(self, key: str) -> None:
        """Drop this process's claim of ``key`` (once its line is written, or on failure)."""
        path = self._claim_path(key)
        owner = self._read_claim(path)
        if owner and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    @staticmethod
    def _read_claim(path: pathlib.Path) -> dict | None:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _stale(self, path: pathlib.Path) -> bool:
        owner = self._read_claim(path)
        if owner is None:  # being written right now, or garbage: stale only when old
            try:
                return time.time() - path.stat().st_mtime > 60.0
            except FileNotFoundError:
                return True
        if owner.get("host") == socket.gethostname():
            return not _alive(owner.get("pid"))
        try:
            return time.time() - path.stat().st_mtime > STALE_CLAIM_S
        except FileNotFoundError:
            return True


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

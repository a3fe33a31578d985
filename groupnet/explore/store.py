"""The sweep's results: one JSON line per finished evaluation, appended as it finishes.

``OUT/results.jsonl`` holds records ``{"kind": "eval" | "sim", "key": ..., ...}``; the
latest record of a (kind, key) is the one that counts, so re-running a failed point
(``--retry-failed``) appends its new result. Only the sweep's driver process writes (under
an exclusive lock, so two sweeps pointed at one folder cannot tear a line); a torn last line
(the machine lost power mid-write) is skipped when reading.
"""

from __future__ import annotations

import fcntl
import json
import time
from pathlib import Path

DONE = ("ok", "nofit", "reference", "trained")


def read_records(path: str | Path) -> dict[tuple[str, str], dict]:
    """The latest record of each (kind, key) in a results.jsonl (none: no file), read only."""
    records: dict[tuple[str, str], dict] = {}
    if not Path(path).is_file():
        return records
    for line in Path(path).read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        records[(rec.get("kind", "eval"), rec["key"])] = rec
    return records


class ResultStore:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "results.jsonl"
        self.records: dict[tuple[str, str], dict] = {}
        self.appended = 0
        self._read()

    def _read(self) -> None:
        self.records.update(read_records(self.path))

    def add(self, kind: str, record: dict) -> dict:
        rec = {"kind": kind, **record, "recorded": time.time()}
        line = json.dumps(rec, default=str) + "\n"
        with open(self.path, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(line)
            f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)
        self.records[(kind, rec["key"])] = rec
        self.appended += 1
        return rec

    def get(self, kind: str, key: str) -> dict | None:
        return self.records.get((kind, key))

    def done(self, key: str, retry_failed: bool = False) -> bool:
        rec = self.get("eval", key)
        if rec is None:
            return False
        return rec["status"] in DONE or (rec["status"] == "failed" and not retry_failed)

    def rows(self, kind: str = "eval") -> list[dict]:
        return [r for (k, _), r in self.records.items() if k == kind]

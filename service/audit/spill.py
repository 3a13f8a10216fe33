"""Partitions of frames for the streamed audit: in memory when there is one, on disk beyond."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import polars as pl

from service.audit.applications import LIST
from service.audit.evaluate import DUP_COLUMNS, UNIT_COLUMNS
from service.engine.polars_decide import REC, SEQ

# Columns a spilled chunk keeps even when empty (the evaluation reads them by name).
KEEP = {REC, SEQ, LIST, "recognised_on", *UNIT_COLUMNS, *DUP_COLUMNS}


class Spill:
    """Partitions of frames: in memory for one partition; beyond, buffered in memory and
    written as Arrow IPC files of a few tens of MB (many small files cost more than the data)."""

    FLUSH_BYTES = 48 * 1024 * 1024

    def __init__(self, parts: int) -> None:
        self.parts = max(1, parts)
        self._memory: dict[tuple[str, int], list[pl.DataFrame]] = {}
        self._buffered = 0.0
        self._folder = Path(tempfile.mkdtemp(prefix="audit-")) if self.parts > 1 else None
        self._count = 0

    def put(self, kind: str, frame: pl.DataFrame | None, by: list[str]) -> None:
        if frame is None or frame.height == 0:
            return
        if self._folder is None:
            self._memory.setdefault((kind, 0), []).append(frame)
            return
        # Fact columns with no value in this chunk (items of the other programs) are not written.
        blank = [
            c for c in frame.columns if c not in KEEP and frame[c].null_count() == frame.height
        ]
        frame = frame.drop(blank)
        part = (pl.struct(by).hash(seed=7) % self.parts).alias("_part")
        for (index,), piece in frame.with_columns(part).partition_by("_part", as_dict=True).items():
            piece = piece.drop("_part")
            self._memory.setdefault((kind, int(index)), []).append(piece)
            self._buffered += piece.estimated_size()
        if self._buffered > self.FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        assert self._folder is not None
        for (kind, index), frames in self._memory.items():
            if not frames:
                continue
            self._count += 1
            folder = self._folder / kind / str(index)
            folder.mkdir(parents=True, exist_ok=True)
            block = pl.concat(frames, how="diagonal_relaxed")
            block.write_ipc(folder / f"{self._count:08d}.arrow", compression="uncompressed")
            frames.clear()
        self._buffered = 0.0

    def get(self, kind: str, part: int) -> pl.DataFrame | None:
        frames = []
        if self._folder is not None:
            folder = self._folder / kind / str(part)
            files = sorted(folder.glob("*.arrow")) if folder.is_dir() else []
            frames = [pl.read_ipc(f) for f in files]
            shutil.rmtree(folder, ignore_errors=True)
        frames += self._memory.pop((kind, part), [])
        return pl.concat(frames, how="diagonal_relaxed") if frames else None

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

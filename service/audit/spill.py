"""Partitions of frames for the streamed audit: in memory when there is one, on disk beyond."""

from __future__ import annotations

import io
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
    appended, a block of a few MB at a time, to one file per kind and partition (Arrow IPC
    blocks whose places are kept here): a file per block made the run's cost grow with the
    square of the input (as many blocks per flush as partitions, flushes as the input grows).
    Blocks are LZ4-compressed: a third of the bytes to write, in the same time (measured)."""

    FLUSH_BYTES = 48 * 1024 * 1024

    def __init__(self, parts: int) -> None:
        self.parts = max(1, parts)
        self._memory: dict[tuple[str, int], list[pl.DataFrame]] = {}
        self._blocks: dict[tuple[str, int], list[tuple[int, int]]] = {}
        self._buffered = 0.0
        self._folder = Path(tempfile.mkdtemp(prefix="audit-")) if self.parts > 1 else None

    def put(self, kind: str, frame: pl.DataFrame | None, by: list[str]) -> None:
        self.add(kind, self.pieces(frame, by))

    def pieces(self, frame: pl.DataFrame | None, by: list[str]) -> list[tuple[int, pl.DataFrame]]:
        """``frame`` cut into one piece per partition (by a hash of ``by``), rows in file order.
        Changes nothing here: chunks can be cut side by side, then added in order."""
        if frame is None or frame.height == 0:
            return []
        if self._folder is None:
            return [(0, frame)]
        # Fact columns with no value in this chunk (items of the other programs) are not written.
        blank = [
            c for c in frame.columns if c not in KEEP and frame[c].null_count() == frame.height
        ]
        frame = frame.drop(blank)
        part = frame.select(pl.struct(by).hash(seed=7) % self.parts).to_series()
        # Ordered by partition, then file order (the key is unique: any sort keeps that order),
        # then one slice per partition (no copy): partition_by and dropping its column cost a
        # query each, per partition and chunk.
        position = pl.int_range(0, frame.height, dtype=pl.UInt64, eager=True)
        frame = frame[(part.cast(pl.UInt64) * (1 << 32) + position).arg_sort()]
        sizes = [0] * self.parts
        for index, size in part.value_counts().iter_rows():
            sizes[index] = size
        out, start = [], 0
        for index, size in enumerate(sizes):
            if size:
                out.append((index, frame.slice(start, size)))
                start += size
        return out

    def add(self, kind: str, pieces: list[tuple[int, pl.DataFrame]]) -> None:
        for index, piece in pieces:
            self._memory.setdefault((kind, index), []).append(piece)
            if self._folder is not None:
                self._buffered += piece.estimated_size()
        if self._buffered > self.FLUSH_BYTES:
            self._flush()

    def _path(self, kind: str, index: int) -> Path:
        assert self._folder is not None
        return self._folder / f"{kind}-{index}.arrow"

    def _flush(self) -> None:
        for (kind, index), frames in self._memory.items():
            if not frames:
                continue
            block = io.BytesIO()
            pl.concat(frames, how="diagonal_relaxed").write_ipc(block, compression="lz4")
            with self._path(kind, index).open("ab") as fh:
                start = fh.tell()
                fh.write(block.getbuffer())
            self._blocks.setdefault((kind, index), []).append((start, block.tell()))
            frames.clear()
        self._buffered = 0.0

    def get(self, kind: str, part: int) -> pl.DataFrame | None:
        frames = []
        blocks = self._blocks.pop((kind, part), [])
        if blocks:
            path = self._path(kind, part)
            data = memoryview(path.read_bytes())
            frames = [pl.read_ipc(io.BytesIO(data[start : start + size])) for start, size in blocks]
            path.unlink()
        frames += self._memory.pop((kind, part), [])
        return pl.concat(frames, how="diagonal_relaxed") if frames else None

    def close(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

"""Files already in award order, read side by side in batches of whole awards.

Bureaus export awards sorted by their id, and their items in the same order. Then the rows of
an award, and its items in the detail file, are next to each other, and the files can be cut
into batches that each hold whole awards with all their items: no partitions on disk.

A batch ends below the greatest award id read so far (the rows of that award may go on in the
next chunk); the detail file is read up to the same id. Every chunk of each file is checked on
the way: its award ids (blank ones aside: such a row is an award of its own) must not go down.
When one does, ``NotInOrder`` is raised and the caller audits the files again in partitions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import polars as pl

Seen = Callable[[pl.DataFrame], str | None]  # called on each raw chunk; returns its id header


class NotInOrder(Exception):
    """The files are not in award order (or change shape mid-way): audit them in partitions."""


@dataclass
class Batch:
    records: list[pl.DataFrame]  # raw rows of whole awards (pieces of consecutive chunks)
    items: list[pl.DataFrame]  # raw detail rows of the same awards (and orphans between)
    last: bool = False  # the files end with it (or they may end with no rows after it)


@dataclass
class _Chunk:
    raw: pl.DataFrame
    ids: pl.Series  # the award ids that are not blank, in order (stripped)
    at: pl.Series  # and their row positions in ``raw``

    def cut(self, boundary: str) -> int:
        """The position of the first row whose id is ``boundary`` or above (else the height)."""
        k = int(self.ids.search_sorted(boundary, side="left"))  # type: ignore[arg-type]
        return int(self.at[k]) if k < self.ids.len() else self.raw.height

    def split(self, cut: int) -> tuple[pl.DataFrame, _Chunk]:
        rest = self.at >= cut
        return self.raw.slice(0, cut), _Chunk(
            self.raw.slice(cut), self.ids.filter(rest), self.at.filter(rest) - cut
        )


class _Stream:
    """One file's raw chunks, checked to be in award order, handed out below a boundary."""

    def __init__(self, name: str, chunks: Iterator[pl.DataFrame], seen: Seen) -> None:
        self.name, self.chunks, self.seen = name, chunks, seen
        self.pending: list[_Chunk] = []
        self.last: str | None = None  # the greatest award id read so far
        self.ended = False

    def read(self) -> bool:
        """One more chunk into the pending rows; False at the end of the file."""
        raw = next(self.chunks, None)
        if raw is None:
            self.ended = True
            return False
        header = self.seen(raw)
        if header is None or header not in raw.columns:
            ids = pl.Series(dtype=pl.String)
            at = pl.Series(dtype=pl.UInt32)
        else:
            ids = raw[header].cast(pl.String).str.strip_chars()
            at = pl.int_range(raw.height, dtype=pl.UInt32, eager=True)
            blank = ids.is_null() | (ids.str.len_bytes() == 0)
            if blank.any():  # rows without an id: awards of their own, between the others
                ids, at = ids.filter(~blank), at.filter(~blank)
        if ids.len():
            if not ids.is_sorted() or (self.last is not None and ids[0] < self.last):
                raise NotInOrder(f"{self.name}: award ids are not in order")
            self.last = ids[-1]
        self.pending.append(_Chunk(raw, ids, at))
        return True

    def below(self, boundary: str | None) -> list[pl.DataFrame]:
        """The pending rows before the first one whose id is ``boundary`` or above (all of them
        when ``boundary`` is None); the rest stay pending."""
        out: list[pl.DataFrame] = []
        while self.pending:
            chunk = self.pending[0]
            cut = chunk.raw.height if boundary is None else chunk.cut(boundary)
            if cut == chunk.raw.height:
                out.append(chunk.raw)
                self.pending.pop(0)
                continue
            taken, self.pending[0] = chunk.split(cut)
            if taken.height:
                out.append(taken)
            break
        return out

    def through(self, boundary: str | None) -> list[pl.DataFrame]:
        """Reads on until a row at or above ``boundary`` is read (or the end), then hands out
        the rows below it."""
        while not self.ended and (boundary is None or self.last is None or self.last < boundary):
            self.read()
        return self.below(boundary)


def batches(
    records: tuple[str, Iterator[pl.DataFrame], Seen],
    details: tuple[str, Iterator[pl.DataFrame], Seen] | None,
) -> Iterator[Batch]:
    """Batches of whole awards: a chunk of the award file or so each, with their items."""
    awards = _Stream(*records)
    items = _Stream(*details) if details is not None else None
    while True:
        more = awards.read()
        # The last award read may go on in the next chunk: it waits, unless this is the end.
        boundary = awards.last if more else None
        if more and boundary is None:
            boundary = ""  # no award ids yet: these rows are awards of their own, no items
        rows = awards.below(boundary)
        found = items.through(boundary) if items is not None else []
        if rows or found:
            yield Batch(rows, found, last=not more)
        if not more:
            return

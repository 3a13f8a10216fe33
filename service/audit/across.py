"""The checks across awards, fed batch by batch and run at the end of the pass.

Each batch of evaluated awards (whole awards with all their items) gives what the checks
across awards need of it:
- program totals and the distinct (program, applicant) pairs: small, kept in memory;
- the awards of programs that fund an applicant once, or have a quota: few, kept on disk;
- every item key (patents, loans, contracts) for the duplicate checks: many. Each key's hash
  (8 bytes) is kept in memory and its row goes to disk, and so does who claimed it (the batch's
  awards, found by their place in it); at the end only hashes seen twice are looked up there,
  with their claimants, and the duplicates among them are decided on the keys themselves.
Memory follows the hashes (8 bytes an item) and the applicants, not the rows of the file.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from service.audit import checks
from service.audit import findings as F
from service.audit.context import AuditContext
from service.audit.evaluate import AWARDED, KEY, Evaluated
from service.engine.polars_decide import REC, SEQ

SEED = 11


@dataclass
class Cut:
    """One evaluated batch, as the checks across awards keep it."""

    findings: list[pl.DataFrame]
    number: int = 0  # the batch's: with an award's place in it, the award's identity
    totals: pl.DataFrame | None = None
    pairs: pl.DataFrame | None = None
    hashes: pl.Series | None = None
    files: dict[str, Path] = field(default_factory=dict)


class Across:
    def __init__(self, ctx: AuditContext) -> None:
        self.ctx = ctx
        self.folder = Path(tempfile.mkdtemp(prefix="audit-across-"))
        self.cuts: list[Cut] = []

    def cut(self, result: Evaluated, number: int) -> Cut:
        """What batch ``number`` gives the checks across awards (its rows written to files of
        its own, so batches are cut side by side)."""
        units, ctx = result.units, self.ctx
        out = Cut(result.findings, number)
        if units.height:
            out.totals = F.owned(checks.program_totals(units))
            out.pairs = checks.unit_pairs(units).with_columns(pl.all().cast(pl.Categorical))
        keys = result.keys
        if keys.height:
            out.hashes = keys[KEY].hash(SEED)  # kept here; the file has the keys themselves
        for kind, frame in (
            ("keys", keys),
            ("owners", result.owners if keys.height else result.owners.clear()),
            ("once", checks.once_units(ctx, units)),
            ("quota", checks.quota_units(ctx, units)),
        ):
            if frame.height:
                path = self.folder / f"{kind}-{number}.arrow"
                _write(frame, path)
                out.files[kind] = path
        return out

    def add(self, cut: Cut) -> list[pl.DataFrame]:
        """Keeps a batch's part; returns its findings about single awards."""
        findings, cut.findings = cut.findings, []
        self.cuts.append(cut)
        return findings

    def finish(self) -> tuple[list[pl.DataFrame], pl.DataFrame]:
        """The findings across awards, and per program: awards, units, awarded, allowed, pool."""
        found: list[pl.DataFrame] = []
        # The checks run side by side (polars frees the GIL), in pieces a pool can share out:
        # the quotas, the applicants funded twice, and each batch's keys whose hash is seen twice
        # (read from its file); here, the hashes seen twice and the program totals.
        with ThreadPoolExecutor(max_workers=3, thread_name_prefix="audit-across") as pool:
            jobs = [pool.submit(self._quotas), pool.submit(self._funded_twice)]
            repeated = self._repeated_hashes()
            claims = [
                pool.submit(self._claims, cut, repeated)
                for cut in self.cuts
                if cut.hashes is not None and repeated.len()
            ]
            programs = self._programs(found)
            keys = [k for job in claims if (k := job.result()).height]
            if keys:
                found.append(checks.duplicates(self.ctx, pl.concat(keys)))
            for job in jobs:
                found += job.result()
        return found, programs

    def _programs(self, found: list[pl.DataFrame]) -> pl.DataFrame:
        """Per program: awards, units, awarded, allowed, pool (a pool overrun into ``found``)."""
        totals = [c.totals for c in self.cuts if c.totals is not None]
        pairs = [c.pairs for c in self.cuts if c.pairs is not None]
        if not totals or not pairs:
            return programs_schema()
        counted = checks.unit_counts(
            pl.concat(pairs).unique().with_columns(pl.all().cast(pl.String))
        ).with_columns(pl.col("units").cast(pl.UInt32))
        summed = (
            pl.concat(totals, how="vertical_relaxed")
            .group_by("program_id")
            .agg(
                pl.col("awards").sum().cast(pl.UInt32),
                pl.col(AWARDED).sum(),
                pl.col("allowed").sum(),
            )
            .join(counted, on="program_id", how="left", nulls_equal=True)
            .select("program_id", "awards", "units", AWARDED, "allowed")
            .filter(pl.col("program_id").is_not_null())
        )
        found.append(checks.pools(self.ctx, summed))
        return with_limits(self.ctx, summed)

    def _funded_twice(self) -> list[pl.DataFrame]:
        once = self._read("once")
        return [checks.funded_twice(self.ctx, once)] if once.height else []

    def _quotas(self) -> list[pl.DataFrame]:
        """Units per round above a quota."""
        quota = self._read("quota")
        return [checks.quotas(self.ctx, checks.units_of(quota))] if quota.height else []

    def _repeated_hashes(self) -> pl.Series:
        """The hashes of item keys seen twice: the duplicates, and the rare keys that share a
        hash with another (``checks.duplicates`` compares the keys themselves)."""
        hashes = [c.hashes for c in self.cuts if c.hashes is not None]
        if not hashes:
            return pl.Series(dtype=pl.UInt64)
        every = pl.concat(hashes).sort()  # equal hashes side by side (a sort is 5x is_duplicated)
        return every.filter((every == every.shift(1)) | (every == every.shift(-1))).unique()

    def _claims(self, cut: Cut, repeated: pl.Series) -> pl.DataFrame:
        """The rows of a batch's keys whose hash is ``repeated``, with who claimed them."""
        assert cut.hashes is not None
        mine = cut.hashes.is_in(repeated.implode())  # the file's rows are in the hashes' order
        if not mine.any():
            return F.empty()
        keys = _wide(pl.read_ipc(cut.files["keys"]).filter(mine))
        owners = _wide(pl.read_ipc(cut.files["owners"]))[keys[REC]]
        # An award is identified by its batch and its place in it.
        rec = (pl.lit(cut.number, dtype=pl.Int64) * 2**32 + pl.col(REC)).alias(REC)
        return pl.concat([keys.with_columns(rec), owners], how="horizontal")

    def _read(self, kind: str, where: pl.Expr | None = None) -> pl.DataFrame:
        """The rows of every batch's file of ``kind`` (those ``where`` holds), in batch order;
        the files are read side by side."""
        scans = [pl.scan_ipc(c.files[kind]) for c in self.cuts if kind in c.files]
        if not scans:
            return pl.DataFrame()
        rows = pl.concat(scans, how="vertical_relaxed")
        return _wide((rows if where is None else rows.filter(where)).collect())

    def close(self) -> threading.Thread:
        """The batch files are removed in the background (freeing a run's few hundred MB of
        page cache takes a tenth of a second): the findings are sorted and written meanwhile.
        The thread is returned, for whoever waits for it (``AuditResult.removed``)."""
        remove = threading.Thread(
            target=shutil.rmtree, args=(self.folder, True), name="audit-remove"
        )
        remove.start()
        return remove


# On disk, columns narrower than in memory: a file name repeated on every row is a dictionary,
# places and rows are 32-bit, and text is plain Arrow strings (offsets, not 16-byte views).
# Half the bytes of a batch's files: written during the pass, read again at its end (measured).
_NARROW: dict[str, tuple[pl.DataType, pl.DataType]] = {  # column: on disk, in memory
    "src": (pl.Categorical(), pl.String()),
    "program_id": (pl.Categorical(), pl.String()),
    "row": (pl.UInt32(), pl.Int64()),
    REC: (pl.UInt32(), pl.Int64()),
    SEQ: (pl.UInt32(), pl.Int64()),
}


def _write(frame: pl.DataFrame, path: Path) -> None:
    schema = frame.schema
    narrow = [pl.col(c).cast(t) for c, (t, wide) in _NARROW.items() if schema.get(c) == wide]
    frame.with_columns(narrow).write_ipc(
        path, compression="uncompressed", compat_level=pl.CompatLevel.oldest()
    )


def _wide(frame: pl.DataFrame) -> pl.DataFrame:
    """A frame read from a batch file, with the types it had before ``_write``."""
    schema = frame.schema
    return frame.with_columns(
        pl.col(c).cast(wide) for c, (t, wide) in _NARROW.items() if schema.get(c) == t
    )


def with_limits(ctx: AuditContext, totals: pl.DataFrame) -> pl.DataFrame:
    """Program totals with their pool, whether the rules know them, and what was allowed."""
    known = set(ctx.book.programs) | set(ctx.book.families)
    pools = {p: checks.pool_fen(ctx, p) for p in totals["program_id"].to_list()}
    out = totals.with_columns(
        pl.col("program_id")
        .replace_strict(pools, default=None, return_dtype=pl.Int64)
        .alias("pool"),
        pl.col("program_id").is_in(list(known)).alias("known"),
    )
    allowed = pl.when(~pl.col("known")).then(pl.lit(0, dtype=pl.Int64)).otherwise(pl.col("allowed"))
    allowed = (
        pl.when(pl.col("pool").is_not_null() & allowed.is_not_null())
        .then(pl.min_horizontal(allowed, pl.col("pool")))
        .otherwise(allowed)
    )
    return out.with_columns(allowed.alias("allowed")).sort("program_id")


def programs_schema() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "program_id": pl.String(),
            "awards": pl.UInt32(),
            "units": pl.UInt32(),
            AWARDED: pl.Int64(),
            "allowed": pl.Int64(),
            "pool": pl.Int64(),
            "known": pl.Boolean(),
        }
    )

"""The batch audit end to end on a generated file of past awards (not a test).

Generates N award records (default 1,000,000) across the programs, most with items in a detail
file (patents, loans, contracts; about 2.7 items each), with a sprinkling of rule breaks, then:
- floor: read both files and write them back (polars, no rules), in a subprocess;
- audit: ``python -m service.audit records.csv --details items.csv --out DIR``, in a subprocess;
the two in turns, three times each (``--rounds``), with no write still pending before each.
Prints the medians' records/s, peak memory (each subprocess's own VmHWM) and their ratio.
Targets: 1M records in <= 20 s, peak < 1.5 GB, <= 3x the floor. Given several sizes, it runs
each and prints how the audit's peak memory grows with the file (flat is the target).

    cd bench && ../.venv/bin/python bench_audit.py [N ...] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from common import ROOT

from service.schemas.identifiers import uscc_check_char

ITEMISED = {"ipa2022-art19": 0.40, "ipa2022-art20": 0.30, "ipa2022-art22": 0.15}
OTHERS = [
    "ipa2022-art06",
    "ipa2022-art10-1",
    "ipa2022-art13",
    "ipa2022-art21",
    "stcsm2023-tech-transfer",
]
ENTITY = {
    "ipa2022-art19": "university", "ipa2022-art20": "commercial_bank", "ipa2022-art22": "enterprise",
    "ipa2022-art21": "service_agency", "ipa2022-art06": "university",
}  # fmt: skip
PATENT_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def _usccs(n: int) -> list[str]:
    out = []
    for i in range(n):
        first = f"91310000MA{i:07d}"
        out.append(first + uscc_check_char(first))
    return out


def _patent(number: pl.Expr) -> pl.Expr:
    digits = (pl.lit(202200000000, dtype=pl.Int64) + number).cast(pl.String)
    total = pl.sum_horizontal(
        digits.str.slice(i, 1).cast(pl.Int64) * w for i, w in enumerate(PATENT_WEIGHTS)
    )
    check = pl.when(total % 11 == 10).then(pl.lit("X")).otherwise((total % 11).cast(pl.String))
    return pl.concat_str(pl.lit("ZL"), digits, pl.lit("."), check)


def _day(base: str, offset: pl.Expr) -> pl.Expr:
    return (pl.lit(base).str.to_date() + pl.duration(days=offset)).dt.strftime("%Y-%m-%d")


def generate(n: int, folder: Path, seed: int = 7) -> tuple[Path, Path]:
    rng = pl.int_range(0, n, eager=True)
    usccs = _usccs(20_000)
    weights = list(ITEMISED.values()) + [0.15 / len(OTHERS)] * len(OTHERS)
    names = list(ITEMISED) + OTHERS
    bounds, acc = [], 0.0
    for w in weights:
        acc += w
        bounds.append(acc)
    r = pl.Series("r", rng).hash(seed) % 1_000_000 / 1_000_000
    program = pl.lit(names[-1])
    for name, bound in reversed(list(zip(names, bounds, strict=True))):
        program = pl.when(pl.col("r") < bound).then(pl.lit(name)).otherwise(program)
    base = pl.DataFrame({"i": rng, "r": r}).with_columns(
        program.alias("program_id"),
        (pl.col("i").hash(seed + 1) % 6 + 1).cast(pl.Int64).alias("n_items"),
        (pl.col("i").hash(seed + 2) % len(usccs)).alias("u"),
        (pl.col("i").hash(seed + 3) % 1000).alias("noise"),
    )
    base = base.with_columns(
        pl.when(pl.col("program_id").is_in(list(ITEMISED)))
        .then(pl.col("n_items"))
        .otherwise(0)
        .alias("n_items")
    )
    uscc = pl.Series(usccs).gather(base["u"])
    entity = pl.col("program_id").replace_strict(ENTITY, default="enterprise")
    per_item = pl.col("program_id").replace_strict(
        {"ipa2022-art19": 150000, "ipa2022-art22": 300000}, default=0, return_dtype=pl.Int64
    )
    items = (
        base.filter(pl.col("n_items") > 0)
        .select("i", "program_id", "noise", pl.int_ranges(0, pl.col("n_items")).alias("k"))
        .explode("k")
    )
    items = items.with_columns(
        (pl.col("i") * 7 + pl.col("k")).hash(seed + 4).alias("h"),
    ).with_columns(
        # Unique patents, except 1 award in 1,000 that claims the next award's patents.
        (pl.col("i") * 8 + pl.col("k") + pl.when(pl.col("noise") == 3).then(8).otherwise(0)).alias(
            "pn"
        ),
        (pl.col("h") % 5_000_000 + 100_000).alias("loan_fen"),
    )
    window_offset = (pl.col("h") % 366).cast(pl.Int64)  # 2022-07-01 + 0..365: 1 in 366 outside
    items = items.select(
        pl.concat_str(pl.lit("AW"), pl.col("i").cast(pl.String).str.zfill(7)).alias("award_id"),
        pl.when(pl.col("program_id") != "ipa2022-art20")
        .then(_patent(pl.col("pn") % 100_000_000))
        .alias("专利号"),
        pl.when(pl.col("program_id") == "ipa2022-art20")
        .then(pl.concat_str(pl.lit("LN"), pl.col("h").cast(pl.String)))
        .alias("贷款编号"),
        pl.when(pl.col("program_id") == "ipa2022-art22")
        .then(pl.concat_str(pl.lit("CT"), pl.col("h").cast(pl.String)))
        .alias("合同编号"),
        pl.when(pl.col("program_id") == "ipa2022-art19")
        .then(_day("2022-07-01", window_offset))
        .alias("合同日期"),
        pl.when(pl.col("program_id") == "ipa2022-art20")
        .then(_day("2022-07-01", window_offset))
        .alias("放款日期"),
        pl.when(pl.col("program_id") == "ipa2022-art22")
        .then(_day("2022-01-01", window_offset))
        .alias("成交日期"),
        pl.when(pl.col("program_id") == "ipa2022-art20")
        .then(
            pl.concat_str(
                (pl.col("loan_fen") // 100).cast(pl.String),
                pl.lit("."),
                (pl.col("loan_fen") % 100).cast(pl.String).str.zfill(2),
            )
        )
        .alias("放款金额"),
        pl.when(pl.col("h") % 300 == 0)
        .then(pl.lit("否"))
        .otherwise(pl.lit("是"))
        .alias("受让方中小企业"),
        pl.lit("是").alias("受让方注册在本市"),
        pl.when(pl.col("h") % 499 == 0)
        .then(pl.lit("否"))
        .otherwise(pl.lit("是"))
        .alias("备案登记"),
        pl.lit("是").alias("借款人中小企业"),
        pl.lit("是").alias("借款人注册在本市"),
        pl.lit("是").alias("质押登记"),
        pl.lit("是").alias("开放许可"),
        pl.lit("是").alias("被许可人中小企业"),
        pl.col("loan_fen"),
        pl.col("i"),
    )
    loans = items.group_by("i").agg(pl.col("loan_fen").sum().alias("loans"))
    items = items.drop("loan_fen", "i")
    awarded = (
        pl.when(pl.col("program_id") == "ipa2022-art20").then(pl.col("loans").fill_null(0) // 1000)
        .when(pl.col("program_id") == "ipa2022-art10-1").then(pl.lit(30_000_000))
        .when(pl.col("program_id") == "ipa2022-art21").then(pl.lit(5_000_000))
        .when(per_item > 0).then(per_item * pl.col("n_items"))
        .otherwise(pl.col("noise") * 50_000 + 1_000_000)
    )  # fmt: skip
    awarded = pl.when(pl.col("noise") == 7).then(awarded + 100).otherwise(awarded)
    records = base.join(loans, on="i", how="left").select(
        pl.concat_str(pl.lit("AW"), pl.col("i").cast(pl.String).str.zfill(7)).alias("奖补编号"),
        pl.col("program_id").alias("项目"),
        pl.concat_str(pl.lit("R"), (pl.col("i") // 40).cast(pl.String)).alias("批次"),
        uscc.alias("统一社会信用代码"),
        pl.concat_str(pl.lit("上海某某单位"), pl.col("u").cast(pl.String)).alias("单位名称"),
        pl.concat_str((awarded // 100).cast(pl.String), pl.lit("."), (awarded % 100).cast(pl.String).str.zfill(2)).alias("奖补金额"),
        pl.when(pl.col("noise") == 11).then(pl.lit("2023-06-20")).otherwise(pl.lit("2023-04-10")).alias("下达日期"),
        pl.lit("2023-04-01").alias("认定日期"),
        pl.when(pl.col("noise") == 13).then(pl.lit("other")).otherwise(entity).alias("单位类型"),
        pl.lit("是").alias("注册在本市"),
        pl.lit("正常").alias("经营状态"),
        pl.lit("良好").alias("信用状况"),
        pl.when(pl.col("program_id").str.starts_with("stcsm"))
        .then(pl.lit("2023-10-20T10:00:00+08:00"))
        .otherwise(pl.lit("2023-03-01T10:00:00+08:00"))
        .alias("申报时间"),
        pl.when(pl.col("program_id").is_in(["ipa2022-art06", "ipa2022-art13", "stcsm2023-tech-transfer"]))
        .then(pl.lit("500000.00")).alias("申请金额"),
    )  # fmt: skip
    records_path, items_path = folder / "awards.csv", folder / "items.csv"
    records.write_csv(records_path)
    items.write_csv(items_path)
    return records_path, items_path


# Peak memory: VmHWM of the process itself (ru_maxrss would include the generating parent's
# peak: Linux keeps it across fork and exec).
HWM = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"
FLOOR = """
import sys, time
import polars as pl
start = time.perf_counter()
for name in sys.argv[1:3]:
    for batch in pl.scan_csv(name, infer_schema=False).collect_batches(chunk_size=200_000):
        with open(sys.argv[3], "ab") as out:
            batch.write_csv(out)
print(time.perf_counter() - start, HWM)
""".replace("HWM", HWM)

AUDIT = """
import sys, time
from service.audit.cli import main
start = time.perf_counter()
code = main(sys.argv[1:] + ["--progress", "on"])
print(time.perf_counter() - start, HWM, code)
""".replace("HWM", HWM)


def _run(script: str, args: list[str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if out.returncode not in (0,):
        sys.stderr.write(out.stderr)
    sys.stderr.write(out.stderr[-400:])
    return out.stdout.strip().splitlines()[-1].split()


def _settled() -> None:
    """Writes still on their way to the disk (a file just generated, the floor's copy) slow
    whichever process runs next: each measurement starts with none."""
    os.sync()


def bench(n: int, folder: Path, rounds: int) -> tuple[float, float]:
    """One size: generate, then the floor and the audit in turns, ``rounds`` times each.
    Returns the audit's median seconds and its largest peak memory (MB)."""
    folder.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    records, items = generate(n, folder)
    size = (records.stat().st_size + items.stat().st_size) / 1e6
    n_items = sum(1 for _ in items.open("rb")) - 1
    print(
        f"generated {n:,} awards + {n_items:,} items ({size:,.0f} MB) in {time.perf_counter() - t:.1f} s"
    )
    floors, audits = [], []
    for _ in range(rounds):
        _settled()
        floors.append(
            tuple(map(float, _run(FLOOR, [str(records), str(items), str(folder / "copy.csv")])))
        )
        (folder / "copy.csv").unlink(missing_ok=True)
        _settled()
        listing = folder / "disqualified.txt"  # the run's 第二十六条 list: none (no database)
        listing.touch()
        args = [str(records), "--details", str(items), "--out", str(folder / "out")]
        out = _run(AUDIT, [*args, "--disqualified", str(listing)])
        audits.append((float(out[0]), float(out[1])))
    floor_s = statistics.median(f[0] for f in floors)
    audit_s = statistics.median(a[0] for a in audits)
    floor_kb, audit_kb = max(f[1] for f in floors), max(a[1] for a in audits)
    report = json.loads(
        (folder / "out" / "report.json").read_text("utf-8").split(',\n "findings"')[0] + "}"
    )

    def spread(values: list[tuple[float, float]]) -> str:
        seconds = sorted(v[0] for v in values)
        return f"{seconds[0]:.2f}-{seconds[-1]:.2f} s" if len(seconds) > 1 else ""

    print(
        f"floor (read + write back, no rules)  {floor_s:6.2f} s  {n / floor_s:10,.0f} records/s  peak {floor_kb / 1024:6.0f} MB  {spread(floors)}"
    )
    print(
        f"audit (end to end, all outputs)      {audit_s:6.2f} s  {n / audit_s:10,.0f} records/s  peak {audit_kb / 1024:6.0f} MB  {spread(audits)}"
    )
    ratios = sorted(a[0] / f[0] for f, a in zip(floors, audits, strict=True))
    print(
        f"ratio to floor {audit_s / floor_s:.2f}x (medians of {rounds}; each round "
        f"{ratios[0]:.2f}-{ratios[-1]:.2f}x); findings {report['finding_count']:,}; "
        f"at stake {report['amount_at_stake']} yuan"
    )
    ok = audit_s <= 20 * n / 1e6 and audit_kb / 1024 < 1536 and audit_s / floor_s <= 3
    print(f"targets (<= 20 s per 1M, < 1.5 GB, <= 3x floor): {'met' if ok else 'NOT met'}")
    return audit_s, audit_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--rounds", type=int, default=3, help="floor and audit runs, in turns")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-audit-"))
    peaks = []
    try:
        for n in args.n:
            folder = base if len(args.n) == 1 else base / str(n)
            peaks.append((n, *bench(n, folder, args.rounds)))
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    if len(peaks) > 1:
        (n0, _, m0), (n1, _, m1) = peaks[0], peaks[-1]
        print(
            f"peak memory {m0:,.0f} MB at {n0:,} awards, {m1:,.0f} MB at {n1:,}: "
            f"x{m1 / m0:.2f} for x{n1 / n0:.0f} the file"
        )


if __name__ == "__main__":
    main()

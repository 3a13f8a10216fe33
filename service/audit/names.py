"""Programs named as bureaus name them: a program cell read as a program (or a family) id.

A cell may hold the id, the Chinese title with or without 上海市, a year (2023年), 项目/建设/评定
around it, 第五条's name or a yearly report's (…知识产权运营绩效奖补项目). Titles and the other
names are the rule files' (``title_zh``, ``names``; families in ``_families.yaml``); both the
cell and every name are normalised the same way and compared whole. A cell that matches none,
or more than one, is not guessed: it stays as written and its finding lists the closest names.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

from service.rules.loader import RuleBook

# Words around a program's name in published tables that do not tell programs apart.
_NOISE = re.compile(r"上海市|项目|建设|评定|认定|制定|工作|专项资金|第[一二三四五六七八九十\d]+批")
_YEAR = re.compile(r"(20\d\d)\s*(?:年度|年)?")
_PUNCT = re.compile(r"[\s()\[\]{}《》<>〈〉“”\"'‘’·・\-—–_、,，.。:：;；/]+")


def normalise(text: str) -> str:
    """The name with its width, case, punctuation, years and filler words taken out."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _YEAR.sub("", text)
    text = _PUNCT.sub("", text)
    return _NOISE.sub("", text)


def year_of(text: str) -> int | None:
    found = _YEAR.search(unicodedata.normalize("NFKC", text))
    return int(found.group(1)) if found else None


# A 合计 row's label (合计, 总 计, Total), as a polars regular expression.
TOTAL = r"^\s*(合\s*计|总\s*计|小\s*计|共\s*计|(?i:total|sum|subtotal))\s*[:：]?\s*$"


@dataclass(frozen=True)
class Match:
    id: str | None  # the program or family id, when exactly one matched
    candidates: tuple[str, ...]  # matched more than one: their ids; none: the closest
    ambiguous: bool = False  # more than one matched


@dataclass(frozen=True)
class _Name:
    id: str
    guide_year: int | None


class ProgramNames:
    """Every id, title and declared name of a rule book's programs and families."""

    def __init__(self, book: RuleBook) -> None:
        self.titles: dict[str, str] = {}
        index: dict[str, set[_Name]] = {}

        def add(key: str, name: _Name) -> None:
            if key:
                index.setdefault(key, set()).add(name)

        for program in book.programs.values():
            entry = _Name(program.id, program.guide_year)
            self.titles[program.id] = program.title_zh
            index.setdefault(program.id.lower(), set()).add(entry)
            for name in (program.title_zh, program.title_en, *program.names):
                add(normalise(name), entry)
        for family in book.families.values():
            entry = _Name(family.id, None)
            self.titles[family.id] = family.title_zh
            index.setdefault(family.id.lower(), set()).add(entry)
            for name in (family.title_zh, family.title_en, *family.names):
                add(normalise(name), entry)
        self.index = index

    def match(self, cell: str) -> Match:
        text = cell.strip()
        exact = self.index.get(text.lower())
        if exact is not None and len(exact) == 1:  # an id as written
            return Match(next(iter(exact)).id, ())
        found = self.index.get(normalise(text), set())
        year = year_of(text)
        if year is not None and len(found) > 1:
            # 2023年概念验证中心: the year names the guide year where titles repeat.
            same = {n for n in found if n.guide_year in (None, year)}
            found = same or found
        if year is not None:
            found = {n for n in found if n.guide_year in (None, year)}
        ids = sorted({n.id for n in found})
        if len(ids) == 1:
            return Match(ids[0], ())
        if ids:
            return Match(None, tuple(ids), ambiguous=True)
        return Match(None, self.closest(text))

    def closest(self, text: str, n: int = 3) -> tuple[str, ...]:
        key = normalise(text)
        scored = sorted(
            ((difflib.SequenceMatcher(None, key, name).ratio(), entry.id)
             for name, entries in self.index.items() for entry in entries),
            reverse=True,
        )  # fmt: skip
        out: list[str] = []
        for _, program_id in scored:
            if program_id not in out:
                out.append(program_id)
            if len(out) == n:
                break
        return tuple(out)

    def described(self, ids: tuple[str, ...]) -> str:
        return "、".join(f"{i}（{self.titles.get(i, '')}）" for i in ids)

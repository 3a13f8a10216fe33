"""Chinese identifiers with check characters: USCC (GB 32100-2015) and patent numbers."""

from __future__ import annotations

import re

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_RE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")


def uscc_check_char(first17: str) -> str:
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> str:
    """Return the USCC unchanged if it is well formed and its check character is right."""
    if not isinstance(value, str) or not _USCC_RE.fullmatch(value):
        raise ValueError(
            "统一社会信用代码应为18位，由数字和大写字母（不含I、O、Z、S、V）组成 / "
            "a USCC is 18 characters of 0-9 and A-Y without I, O, Z, S, V"
        )
    expected = uscc_check_char(value[:17])
    if value[17] != expected:
        raise ValueError(
            f"统一社会信用代码校验位错误，应为{expected} / USCC check character should be {expected}"
        )
    return value


_PATENT_RE = re.compile(r"(?:ZL|CN)?([0-9]{12}|[0-9]{8})\.?([0-9X])")
_PATENT_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def patent_check_char(digits: str) -> str:
    total = sum(int(d) * w for d, w in zip(digits, _PATENT_WEIGHTS, strict=False))
    check = total % 11
    return "X" if check == 10 else str(check)


def canonical_patent_number(value: str) -> str:
    """Canonical form (digits + check character, no prefix, no dot) of a Chinese patent number.

    ``ZL201510906090.5``, ``CN2015109060905`` and ``201510906090.5`` are the same patent.
    """
    if not isinstance(value, str):
        raise ValueError("专利号应为字符串 / a patent number is a string")
    match = _PATENT_RE.fullmatch(value.strip().upper())
    if not match:
        raise ValueError(
            "专利号格式应为（ZL/CN）+12位或8位数字+（.）+校验位 / "
            "a patent number is (ZL/CN) + 12 or 8 digits + (.) + check character"
        )
    digits, check = match.groups()
    expected = patent_check_char(digits)
    if check != expected:
        raise ValueError(
            f"专利号校验位错误，应为{expected} / patent check character should be {expected}"
        )
    return digits + check

"""Money arithmetic in Decimal yuan, two places (fen). The one module that rounds.

Every rounding in the service goes through here, so that "不超过" caps are never exceeded by
rounding: shares and rates round DOWN to the fen, never half-up.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

FEN = Decimal("0.01")
ZERO = Decimal("0.00")


def round_down_to_fen(amount: Decimal) -> Decimal:
    """Truncate towards zero at the fen (分)."""
    return amount.quantize(FEN, rounding=ROUND_DOWN)


def to_fen(amount: Decimal) -> int:
    """Exact integer fen for an amount that already has at most two decimals."""
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount} has more than two decimals")
    return int(fen)


def from_fen(fen: int) -> Decimal:
    return (Decimal(fen) / 100).quantize(FEN)


def fmt(amount: Decimal) -> str:
    """The JSON form of an amount: a string with exactly two decimals."""
    return str(amount.quantize(FEN))


def fen_text(fen: int) -> str:
    """``fmt(from_fen(fen))`` without Decimal arithmetic (allocation lines come in 10,000s)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"

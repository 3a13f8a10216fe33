"""Stored applications, evaluations, rounds, allocations and the 第二十六条 list.

``models`` (SQLModel tables; ``migrations/`` creates them), ``session`` (the engine and one
transaction per request), and one repository module per resource.
"""

from service.db.session import Database

__all__ = ["Database"]

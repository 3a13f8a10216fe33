"""The base of every request form; the forms themselves are data (``rules/**/_forms.yaml``).

:mod:`service.rules.forms` builds one pydantic model per model of the form files at start-up.
Portals fill one form per family; every program of a family accepts all of the family's
fields and ignores those its conditions do not use. A field that belongs to no program of
the family is refused (``extra="forbid"``): it is probably a typo.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict

from service.schemas.types import PlainText


class _Applicant(Protocol):
    uscc: str
    name: str


class Application(BaseModel):
    """A request form. Every form has ``applicant`` (with ``uscc`` and ``name``) and ``submitted_at``:
    the loader refuses a form without them, and the service reads them for every program."""

    model_config = ConfigDict(extra="forbid")

    if TYPE_CHECKING:  # declared by rules/_forms.yaml, not here
        applicant: _Applicant
        submitted_at: datetime


def text_field(min_length: int | None, max_length: int | None) -> tuple[Any, dict[str, Any]]:
    """The form files' ``text`` type: the one place that says what a free text field is."""
    return PlainText, {"min_length": min_length, "max_length": max_length}

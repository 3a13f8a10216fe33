"""The four roles and what a key stands for once it is checked."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ALL_APPLICANTS = "*"  # a portal that acts for every applicant (the city's one-stop portal)


class Role(StrEnum):
    portal = "portal"  # submits and reads the applications of the applicants it is bound to
    reviewer = "reviewer"  # reads every application, records approval, opens and allocates rounds
    auditor = "auditor"  # the batch audit only
    admin = "admin"  # the 第二十六条 list and the API keys


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    role: Role
    applicants: frozenset[str] = frozenset()

    def acts_for(self, uscc: str) -> bool:
        """A portal bound to this applicant."""
        return self.role is Role.portal and (
            ALL_APPLICANTS in self.applicants or uscc in self.applicants
        )

    def may_read(self, uscc: str) -> bool:
        """Reviewers read every application; portals those of their own applicants."""
        return self.role is Role.reviewer or self.acts_for(uscc)

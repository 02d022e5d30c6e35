"""The staff directory: for each agency, its officials and the manager who answers for it
(the agency's own or its nearest parent's), each with their username at the identity
provider and their work mailbox. ``lgsp realm`` writes it from the same people as the realm;
notify reads the mailboxes, the documents report the officials who should have read."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Person:
    username: str
    mailbox: str


class StaffDirectory:
    def __init__(self, entries: dict[str, dict[str, list[dict]]]) -> None:
        self._entries = {
            agency: {role: tuple(Person(**p) for p in people) for role, people in roles.items()}
            for agency, roles in entries.items()
        }

    @classmethod
    def load(cls, path: Path) -> "StaffDirectory":
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def officials(self, agency: str) -> tuple[Person, ...]:
        return self._entries.get(agency, {}).get("officials", ())

    def managers(self, agency: str) -> tuple[Person, ...]:
        return self._entries.get(agency, {}).get("managers", ())

    def mailboxes(self, agency: str) -> list[str]:
        """Everyone to tell when the agency is late: its officials, then its manager, once each."""
        return list(dict.fromkeys(p.mailbox for p in (*self.officials(agency), *self.managers(agency))))

"""Working time: Monday to Friday minus public holidays, plus make-up working Saturdays, from
one file per year. Time limits are counted in working days (half-days allowed) over office
hours in Vietnam's time zone.

Rules (DOMAIN.md's defaults, configurable through ``OfficeHours``):
- counting starts on the working day after receipt;
- a working day is two sessions, 08:00-12:00 and 13:00-17:00; half a day is one session;
- a limit of N days ends at 17:00 of the N-th working day; N + 0.5 at 12:00 of the next one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CALENDAR_DIR = Path(__file__).parent / "calendar"


class CalendarNotCovered(LookupError):
    """A date in a year the calendar has no file for: never guessed."""


@dataclass(frozen=True)
class OfficeHours:
    sessions: tuple[tuple[time, time], ...] = ((time(8), time(12)), (time(13), time(17)))

    @property
    def minutes_per_day(self) -> int:
        return sum((e.hour * 60 + e.minute) - (s.hour * 60 + s.minute) for s, e in self.sessions)


class WorkingCalendar:
    def __init__(
        self,
        holidays: dict[date, str],
        makeup_days: dict[date, str],
        years: set[int],
        office: OfficeHours = OfficeHours(),
    ) -> None:
        self.holidays = holidays
        self.makeup_days = makeup_days
        self.years = years
        self.office = office

    @classmethod
    def load(cls, directory: Path = CALENDAR_DIR, office: OfficeHours = OfficeHours()) -> "WorkingCalendar":
        holidays, makeup, years = {}, {}, set()
        for path in sorted(directory.glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            year = int(data["year"])
            for entry in data["holidays"]:
                d = date.fromisoformat(entry["date"])
                if d.year != year:
                    raise ValueError(f"{path.name}: holiday {d} is not in {year}")
                holidays[d] = entry["name"]
            for entry in data.get("makeup_working_days", []):
                d = date.fromisoformat(entry["date"])
                if d.weekday() < 5:
                    raise ValueError(f"{path.name}: make-up day {d} is already a weekday")
                makeup[d] = entry["name"]
            years.add(year)
        if not years:
            raise ValueError(f"no calendar files in {directory}")
        return cls(holidays, makeup, years, office)

    # ---------------------------------------------------------------- days

    def is_working_day(self, day: date) -> bool:
        if day.year not in self.years:
            covered = ", ".join(str(y) for y in sorted(self.years))
            raise CalendarNotCovered(
                f"the working-day calendar has no data for {day.year} (it covers {covered}); "
                f"add shared/reference/calendar/{day.year}.json"
            )
        if day in self.makeup_days:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def next_working_day(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    # ---------------------------------------------------------------- moments

    def _sessions_of(self, day: date) -> list[tuple[datetime, datetime]]:
        return [
            (datetime.combine(day, s, LOCAL_TZ), datetime.combine(day, e, LOCAL_TZ)) for s, e in self.office.sessions
        ]

    def add_working_minutes(self, start: datetime, minutes: int) -> datetime:
        """The moment ``minutes`` of office time after ``start`` (an aware datetime)."""
        if minutes < 0:
            raise ValueError("minutes must not be negative")
        moment = start.astimezone(LOCAL_TZ)
        day = moment.date()
        left = minutes
        while True:
            if self.is_working_day(day):
                for s, e in self._sessions_of(day):
                    begin = max(s, moment)
                    if begin >= e:
                        continue
                    available = int((e - begin).total_seconds() // 60)
                    if left <= available:
                        return (begin + timedelta(minutes=left)).astimezone(ZoneInfo("UTC"))
                    left -= available
            day += timedelta(days=1)
            moment = datetime.combine(day, time(0), LOCAL_TZ)

    def working_minutes_between(self, start: datetime, end: datetime) -> int:
        """Office minutes in [start, end); 0 if end is not after start."""
        if end <= start:
            return 0
        a, b = start.astimezone(LOCAL_TZ), end.astimezone(LOCAL_TZ)
        total = 0
        day = a.date()
        while day <= b.date():
            if self.is_working_day(day):
                for s, e in self._sessions_of(day):
                    lo, hi = max(s, a), min(e, b)
                    if hi > lo:
                        total += int((hi - lo).total_seconds() // 60)
            day += timedelta(days=1)
        return total

    def due_at(self, received_at: datetime, days: Decimal | float) -> datetime:
        """The due moment of a limit of ``days`` working days for something received at ``received_at``."""
        minutes = self.days_to_minutes(days)
        first = self.next_working_day(received_at.astimezone(LOCAL_TZ).date())
        start = datetime.combine(first, self.office.sessions[0][0], LOCAL_TZ)
        if minutes == 0:
            return start.astimezone(ZoneInfo("UTC"))
        return self.add_working_minutes(start, minutes)

    def days_to_minutes(self, days: Decimal | float) -> int:
        d = Decimal(str(days))
        if d < 0 or (d * 2) % 1 != 0:
            raise ValueError(f"a time limit must be a non-negative multiple of half a day, not {days}")
        return int(d * self.office.minutes_per_day)

    def minutes_to_days(self, minutes: int) -> float:
        return round(minutes / self.office.minutes_per_day, 2)

"""The appointment rules, read once from the app's settings and passed to the services."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AppointmentRules:
    days_ahead: int = 7  # working days offered, today included
    slot_minutes: int = 30
    slot_capacity: int = 4  # default capacity of a new slot; managers may change it
    checkin_early_minutes: int = 30
    checkin_late_minutes: int = 15
    miss_limit: int = 3
    miss_window_days: int = 30
    suspension_days: int = 7
    reminder_minutes: int = 120  # the reminder message goes this long before the slot

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AppointmentRules:
        return cls(
            days_ahead=config["APPOINTMENT_DAYS_AHEAD"],
            slot_minutes=config["APPOINTMENT_SLOT_MINUTES"],
            slot_capacity=config["APPOINTMENT_SLOT_CAPACITY"],
            checkin_early_minutes=config["APPOINTMENT_CHECKIN_EARLY_MINUTES"],
            checkin_late_minutes=config["APPOINTMENT_CHECKIN_LATE_MINUTES"],
            miss_limit=config["APPOINTMENT_MISS_LIMIT"],
            miss_window_days=config["APPOINTMENT_MISS_WINDOW_DAYS"],
            suspension_days=config["APPOINTMENT_SUSPENSION_DAYS"],
            reminder_minutes=config["APPOINTMENT_REMINDER_MINUTES"],
        )

    @property
    def checkin_early(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.checkin_early_minutes)

    @property
    def reminder_lead(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.reminder_minutes)

    @property
    def checkin_late(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.checkin_late_minutes)

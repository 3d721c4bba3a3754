"""Appointments (预约): bookable slots per hall, category and day; booking, check-in, misses."""

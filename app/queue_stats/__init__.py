"""Queue statistics per hall, category, window and day, computed from the tickets."""

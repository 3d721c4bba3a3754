"""Operating the service: backups and restores (`flask ops ...`)."""

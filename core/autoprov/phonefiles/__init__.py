"""What phones read and write besides their config: the company directory, uploaded logs, local setting
overrides and personal contacts (see docs/uploads.md)."""

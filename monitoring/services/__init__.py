"""Monitoring services: the only code that writes monitoring rows."""

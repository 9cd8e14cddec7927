"""Alerts: cap thresholds, credits-low, budget-exceeded and anomalies, fired once each and sent via the outbox."""

"""Alerts: rules, routing, opinion early warning, dedup/throttle, messages, outbox, SMTP.

No Scrapy here. Entry point: :func:`crawler.alerts.service.deliver` (evaluate new
hits, compose due mail, send the outbox). Kept import-light because
``crawler.config`` imports :mod:`crawler.alerts.config`.
"""

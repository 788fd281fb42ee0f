"""Dossiers (一户一档), period reports (总结报告), coverage and risk grading; no Scrapy."""

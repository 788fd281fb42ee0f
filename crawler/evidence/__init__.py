"""Evidence of hits (五(一) 先行登记保存): WARC files, their index in the state DB, verify and export.

No Scrapy here: the evidence pipeline (``crawler.pipelines.evidence``) feeds
``archive.Archive``; the ``finpatrol evidence`` commands use ``verify`` and ``export``.
Settings: the ``evidence:`` block of the patrol config (``config.EvidenceConfig``).
"""

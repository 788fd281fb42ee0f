"""State DB and search indexes: no Scrapy here."""

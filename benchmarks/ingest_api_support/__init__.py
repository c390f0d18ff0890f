"""What `benchmarks/ingest_api.py` serves beside the product: settings and URLs that add the
baseline views. Never part of the deployed service (the image's settings are
`autorespond.settings`, whose URLs have no such view)."""

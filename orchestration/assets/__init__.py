"""Assets by stage: ingest (raw files and their quality checks), dbt (staging → marts)."""

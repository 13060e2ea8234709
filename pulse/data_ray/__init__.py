"""Ray Data pipelines of pulse: ``readers/`` + ``ingest`` (raw datasets -> records), then
render, build and the other stages, one stage per module."""

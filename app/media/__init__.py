"""Photos from the field: uploads read as they stream (uploads.py), processed on worker
threads into renditions with no metadata (processing.py), kept by a storage backend
(storage/: local disk or an S3-compatible bucket), recorded (library.py) and named by
entries through `media_id` (references.py)."""

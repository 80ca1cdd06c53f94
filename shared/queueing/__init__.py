"""Task and queue names, the Celery app, and publishing after commit: how web and workers talk."""

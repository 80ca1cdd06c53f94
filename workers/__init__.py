"""Celery worker pools. Tasks are thin: load the intent by id, claim it, call a service, record the outcome."""

"""The Celery application object, configured from celeryconfig.py by name.

It imports no task code and connects no signals: web uses it only to publish by
name; workers/app.py adds the tasks and the worker-side signal handlers.
"""

from celery import Celery

celery_app = Celery("pytake")
celery_app.config_from_object("celeryconfig")

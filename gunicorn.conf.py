"""The web server's settings: one place for the Procfile, the Dockerfile and the benchmarks (`-c gunicorn.conf.py`).

Threaded workers: a request spends much of its time waiting on PostgreSQL, Redis and MongoDB, and
the threads of a worker overlap those waits; concurrent webhook intakes then share one commit
(shared/group_commit.py). Measured in bench/README.md ("The web server's settings").
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
graceful_timeout = 5

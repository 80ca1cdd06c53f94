"""The web server's settings: one place for the Procfile, the Dockerfile and the benchmarks (`-c gunicorn.conf.py`).

Threaded workers: a request spends much of its time waiting on PostgreSQL, Redis and MongoDB, and
the threads of a worker overlap those waits; concurrent webhook intakes then share one commit
(shared/group_commit.py). Measured in bench/README.md ("The web server's settings").
"""

import gc
import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
graceful_timeout = 5


def post_worker_init(worker):
    """Move what loading the app created out of the collector's sight: a full collection walks every object of
    the app (about 150,000, 75 ms on this machine) and stalls each thread of the worker meanwhile (the intake's
    p99.9 at 500 requests/s was 140 ms). Objects made by requests are collected as usual."""
    gc.collect()
    gc.freeze()

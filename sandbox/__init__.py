"""The local WhatsApp Cloud API sandbox: plays Meta for tests, the demo and benchmarks.

It imports nothing of the project (stdlib, Flask, Werkzeug and requests only). `sandbox.app.create_app`
builds the Flask app; `python -m sandbox --port 8090` serves it; `sandbox.server.run_in_thread()` starts
one for tests. Graph API routes live in `graph.py`, the /_sandbox control API in `control.py`.
"""

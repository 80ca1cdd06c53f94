"""The local WhatsApp Cloud API sandbox: plays Meta for tests, the demo and benchmarks.

It imports nothing of the project. Built by the WhatsApp channel issue.
"""

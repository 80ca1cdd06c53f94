"""What the fuzzing pass saw: the status codes each operation answered, summed up at the end of the run."""

from __future__ import annotations

ANSWERED: dict[str, set[int]] = {}


def pytest_terminal_summary(terminalreporter) -> None:
    if not ANSWERED:
        return
    succeeded = sorted(label for label, codes in ANSWERED.items() if any(200 <= code < 300 for code in codes))
    terminalreporter.write_sep("-", "schemathesis")
    terminalreporter.write_line(f"{len(succeeded)} of {len(ANSWERED)} operations answered a 2xx at least once")
    never = sorted(set(ANSWERED) - set(succeeded))
    if never:
        terminalreporter.write_line("never a 2xx: " + ", ".join(
            f"{label} ({'/'.join(str(c) for c in sorted(ANSWERED[label]))})" for label in never))

"""shared.group_commit: concurrent callers' rows written together, each caller answered with its own result."""

import threading
import time

import pytest

from shared.group_commit import GroupCommit


class SlowWriter:
    """Records each batch; the first batch waits until released, so the rows submitted meanwhile queue up."""

    def __init__(self, fail_on=None):
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, rows):
        if not self.batches:
            self.release.wait(5)
        self.batches.append(list(rows))
        if self.fail_on in rows:
            raise RuntimeError(f"row {self.fail_on} refused")
        return [row * 10 for row in rows]


def submit_in_threads(committer, rows):
    results, errors = {}, {}

    def run(row):
        try:
            results[row] = committer.submit(row)
        except Exception as exc:
            errors[row] = exc

    threads = [threading.Thread(target=run, args=(row,)) for row in rows]
    for thread in threads:
        thread.start()
        time.sleep(0.01)  # in order: the first one leads and blocks in the writer
    return threads, results, errors


def test_a_lone_caller_writes_its_row_itself():
    writer = SlowWriter()
    writer.release.set()
    assert GroupCommit(writer).submit(7) == 70
    assert writer.batches == [[7]]


def test_rows_arriving_during_a_write_go_together_in_the_next_one():
    writer = SlowWriter()
    committer = GroupCommit(writer)
    threads, results, errors = submit_in_threads(committer, [1, 2, 3, 4])
    writer.release.set()
    for thread in threads:
        thread.join(5)
    assert writer.batches == [[1], [2, 3, 4]]  # two commits for four rows
    assert results == {1: 10, 2: 20, 3: 30, 4: 40} and not errors


def test_a_failed_batch_reaches_its_callers_only_and_the_next_batch_still_runs():
    writer = SlowWriter(fail_on=3)
    committer = GroupCommit(writer, max_batch=2)
    threads, results, errors = submit_in_threads(committer, [1, 2, 3, 4])
    writer.release.set()
    for thread in threads:
        thread.join(5)
    assert writer.batches == [[1], [2, 3], [4]]
    assert results == {1: 10, 4: 40}
    assert set(errors) == {2, 3} and all("row 3 refused" in str(exc) for exc in errors.values())
    assert committer.submit(5) == 50  # nobody is left holding the lead


def test_the_lead_passes_on_when_the_writer_raises():
    def writer(rows):
        raise ConnectionError("server closed the connection")

    committer = GroupCommit(writer)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            committer.submit(1)


def test_a_write_that_submits_again_from_its_own_thread_does_not_wait_on_itself():
    committer = None

    def writer(rows):
        if rows == [1]:
            assert committer.submit(2) == 20  # say, a task run inline whose commit flushes through the same buffer
        return [row * 10 for row in rows]

    committer = GroupCommit(writer)
    assert committer.submit(1) == 10

"""The results store: nothing it did not write is touched, concurrent writers, failed writes."""

import errno
import json
import os
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studies.sweep import TASKS, ResultStore, StoreError
from studies.sweep.run import execute, make_jobs
from tests.sweep_fakes import fake_job, read_calls

CORA = TASKS["gcn-cora"]


def _jobs(n, start=0):
    return make_jobs(CORA, [({"adc_bits": 4}, i) for i in range(start, start + n)],
                     base="lab-bench", seed=0, encoding=None, fidelity_errors=0)


@pytest.fixture(scope="module")
def jobs():
    return _jobs(12)


def _record(job):
    return fake_job(job.payload())


def test_lines_it_did_not_write_are_kept_byte_for_byte_and_named(tmp_path, jobs):
    path = tmp_path / "runs.jsonl"
    foreign = ('{"note": "an annotation by hand"}\n'
               '{"settings": {"format": 2, "task": "gcn"}, "result": {"test_accuracy": 0.8}}\n'
               "plain text\n")
    path.write_text(foreign, encoding="utf-8")
    store = ResultStore(path)
    execute(store, jobs[:3], runner=fake_job, say=lambda m: None)
    text = path.read_text(encoding="utf-8")
    assert text.startswith(foreign) and len(text.splitlines()) == 6
    with pytest.warns(UserWarning, match=r"3 line\(s\) kept as they are and not used"):
        contents = ResultStore(path).read()
    assert len(contents.records) == 3
    assert {entry["line"] for entry in contents.other_lines} == {1, 2, 3}


@pytest.mark.filterwarnings("ignore:store .* kept as they are")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(done=st.integers(0, 5), cut=st.floats(0.0, 1.0, exclude_max=True))
def test_an_interrupted_write_is_kept_unused_and_its_run_done_again(tmp_path_factory, jobs, done,
                                                                    cut):
    path = tmp_path_factory.mktemp("store") / "runs.jsonl"
    store = ResultStore(path)
    for job in jobs[:done]:
        store.append(_record(job))
    whole = path.read_bytes() if path.exists() else b""
    line = (json.dumps(_record(jobs[done])) + "\n").encode()
    path.write_bytes(whole + line[:max(1, int(cut * (len(line) - 1)))])  # cut before its end
    contents = ResultStore(path).read(warn=False)
    assert [r["key"] for r in contents.records] == [job.key for job in jobs[:done]]
    assert len(contents.other_lines) == 1
    calls = []
    execute(ResultStore(path), jobs[:done + 2],
            runner=lambda payload: calls.append(payload["key"]) or fake_job(payload),
            say=lambda m: None)
    assert calls == [job.key for job in jobs[done:done + 2]]   # only the runs not stored
    after = ResultStore(path).read(warn=False)
    assert [r["key"] for r in after.records] == [job.key for job in jobs[:done + 2]]
    assert path.read_bytes().startswith(whole + line[:max(1, int(cut * (len(line) - 1)))])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writers=st.integers(2, 4),
       plans=st.lists(st.lists(st.integers(0, 11), min_size=1, max_size=8), min_size=4,
                      max_size=4))
def test_concurrent_writers_neither_repeat_a_run_nor_lose_a_line(tmp_path_factory, jobs, writers,
                                                                plans):
    """Writers with overlapping job lists on one store, at once: each run once, every line kept."""
    path = tmp_path_factory.mktemp("store") / "runs.jsonl"
    calls, lock = [], threading.Lock()

    def runner(payload):
        with lock:
            calls.append(payload["key"])
        threading.Event().wait(0.002)
        return fake_job(payload)

    errors = []

    def writer(indices):
        try:
            execute(ResultStore(path), [jobs[i] for i in indices], runner=runner,
                    say=lambda m: None, poll_s=0.01)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(plans[i],)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    wanted = {jobs[i].key for plan in plans[:writers] for i in plan}
    assert sorted(calls) == sorted(wanted)                 # each run computed once
    contents = ResultStore(path).read(warn=False)
    assert sorted(r["key"] for r in contents.records) == sorted(wanted)
    assert contents.other_lines == []                       # no line interleaved or cut
    assert not list((path.parent / "runs.jsonl.claims").glob("*.claim"))


def _process_writer(path, start, calls):
    import os as _os

    _os.environ["SWEEP_FAKE_CALLS"] = calls
    _os.environ["SWEEP_FAKE_DELAY"] = "0.05"
    execute(ResultStore(path), _jobs(8, start), runner=fake_job, say=lambda m: None,
            poll_s=0.05)


@pytest.mark.slow
def test_two_processes_on_one_store_share_the_work(tmp_path):
    import multiprocessing

    path, calls = tmp_path / "runs.jsonl", tmp_path / "calls.txt"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_process_writer, args=(str(path), start, str(calls)))
                 for start in (0, 4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0]
    counted = read_calls(calls)
    assert sorted(counted) == sorted({job.key for job in _jobs(12)})  # 12 runs, each once
    assert len(ResultStore(path).read(warn=False).records) == 12


def test_a_failed_write_leaves_the_store_as_it_was(tmp_path, jobs, monkeypatch):
    path = tmp_path / "runs.jsonl"
    store = ResultStore(path)
    store.append(_record(jobs[0]))
    before = path.read_bytes()
    real_write = os.write

    def full_disk(descriptor, data):
        real_write(descriptor, bytes(data)[:10])  # part of the line reaches the disk ...
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(StoreError, match=r"could not be written \(No space left on device\); "
                                         r"the store is as it was"):
        store.append(_record(jobs[1]))
    monkeypatch.undo()
    assert path.read_bytes() == before
    calls = []
    execute(store, jobs[:2], runner=lambda p: calls.append(p["key"]) or fake_job(p),
            say=lambda m: None)
    assert calls == [jobs[1].key]  # the lost run is simply done again
    assert not list((tmp_path / "runs.jsonl.claims").glob("*.claim"))  # claims released


def test_an_unreadable_store_is_named_with_the_reason(tmp_path, monkeypatch):
    folder = tmp_path / "a_folder.jsonl"
    folder.mkdir()
    with pytest.raises(StoreError, match=r"a_folder.jsonl': is a directory"):
        ResultStore(folder)
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b'{"a": 1}\n\xff\xfe not text\n')
    with pytest.raises(StoreError, match=r"binary.jsonl': line 2 is not UTF-8 text \(byte 0xff"):
        ResultStore(binary).read()
    locked = tmp_path / "locked.jsonl"
    locked.write_text("")

    def denied(self):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(type(locked), "read_bytes", denied)
    with pytest.raises(StoreError, match=r"locked.jsonl': permission denied"):
        ResultStore(locked).read()

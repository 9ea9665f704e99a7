"""Service output: line splitting, and a container log that never blocks init."""

import os
import pty
import re
import threading

import pytest
from init_harness import scaled, service, svc, table, wait_until

from monoimage.init.logs import PARTIAL_AFTER, LineBuffer, prefixed, quote_argv
from monoimage.init.logwriter import LogWriter


def test_lines_complete_across_reads_and_partial_lines_wait():
    buffer = LineBuffer(cap=8)
    assert buffer.feed(b"one\ntw", 10.0) == [b"one"]
    assert buffer.flush_due() == 10.0 + PARTIAL_AFTER
    assert buffer.feed(b"o\n\nthree", 11.0) == [b"two", b""]
    assert buffer.flush_due() == 11.0 + PARTIAL_AFTER
    assert buffer.flush() == [b"three"]
    assert buffer.flush_due() is None and buffer.flush() == []


def test_long_lines_come_in_cap_sized_pieces_whatever_the_reads():
    whole = LineBuffer(cap=4)
    assert whole.feed(b"abcdefghij\n", 0.0) == [b"abcd", b"efgh", b"ij"]
    pieces = LineBuffer(cap=4)
    assert pieces.feed(b"abcdef", 0.0) == [b"abcd"]
    assert pieces.feed(b"ghij\n", 0.0) == [b"efgh", b"ij"]


def test_prefixed_block_and_quoted_argv():
    assert prefixed(b"web | ", [b"a", b""]) == b"web | a\nweb | \n"
    assert quote_argv(["nginx", "-g", "daemon off;"]) == "nginx -g 'daemon off;'"
    assert quote_argv(["echo", "it's"]) == "echo 'it'\\''s'"
    assert quote_argv(["python3", "-c", "a\nb"]) == "python3 -c 'a\\nb'"


def test_log_writer_never_blocks_drops_whole_lines_and_counts_them():
    read_end, write_end = os.pipe()
    try:
        writer = LogWriter(write_end, cap=1000)
        assert os.get_blocking(write_end), "the shared pipe end keeps its blocking mode"
        line = b"y" * 99 + b"\n"
        written = 0
        while not writer.pending:          # until the pipe is full
            writer.write(line)
            written += 1
        while not writer.dropped:          # until the buffer is full too
            writer.write(line * 2)
            written += 2
        assert len(writer.pending) <= 1000 + len(line) * 2
        assert (writer.dropped, writer.dropped_total) == (2, 2)
        got = b""
        os.set_blocking(read_end, False)
        while writer.pending or not got.endswith(b"\n"):
            got += os.read(read_end, 65536)
            writer.flush()
        while True:
            try:
                got += os.read(read_end, 65536)
            except BlockingIOError:
                break
        assert got == line * (written - 2), "everything but the dropped block, in order"
        writer.close()
    finally:
        os.close(read_end)
        os.close(write_end)


def test_log_writer_keeps_a_shared_terminal_blocking_and_closes_its_own_fd():
    controller, terminal = pty.openpty()
    try:
        writer = LogWriter(terminal)
        assert writer.fd != terminal and not os.get_blocking(writer.fd)
        assert os.get_blocking(terminal), "a shell sharing the terminal never sees O_NONBLOCK"
        writer.write(b"hello\n")
        assert os.read(controller, 100) == b"hello\r\n"
        own = writer.fd
        writer.close()
        with pytest.raises(OSError):
            os.fstat(own)
    finally:
        os.close(controller)
        os.close(terminal)


def read_available(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def stall_init(start_init, tmp_path):
    """An init whose stdout and stderr are a pipe nobody reads, a service flooding it, and a
    service in a crash loop; returns the run and the pipe's read end once init drops lines."""
    read_end, write_end = os.pipe()
    events = tmp_path / "events"
    try:
        run = start_init(table(
            service("flood", svc("flood", "--flood", events=events)),
            service("crasher", ["false"], critical=False,
                    restart={"policy": "always", "backoff_initial": 0.05, "backoff_max": 0.05,
                             "max_restarts": 100000, "window": 3600.0}),
        ), output_fd=write_end)
    finally:
        os.close(write_end)
    wait_until(lambda: int(init_record(run)["log_dropped_lines"]) > 0, 20.0,
               "init to drop lines of a log nobody reads")
    return run, read_end


def init_record(run):
    return next(fields for kind, fields in run.records() if kind == "init")


def test_a_stalled_log_reader_stops_neither_reaping_nor_stopping(start_init, tmp_path):
    run, read_end = stall_init(start_init, tmp_path)
    try:
        restarts = int(run.status()["crasher"]["restarts"])
        wait_until(lambda: int(run.status()["crasher"]["restarts"]) >= restarts + 3, 20.0,
                   "the crash loop to go on (init reaps and restarts) while the log is stalled")
        assert run.stop() == 0, "init stopped with the log still stalled"
        assert "flood stop" in run.events()
        text = read_available(read_end).decode()
    finally:
        os.close(read_end)
    whole = text.split("\n")[:-1]   # what init wrote last may be cut by its exit
    assert whole[0].startswith("monoimage-init | configuring 2 service(s) from ")
    assert [line for line in whole if not line.startswith(
        ("monoimage-init | ", "flood | flood " + "x" * 200))] == []


def test_init_says_how_many_lines_it_dropped_once_the_reader_is_back(start_init, tmp_path):
    run, read_end = stall_init(start_init, tmp_path)
    own: list[str] = []
    done = threading.Event()

    def reader() -> None:   # keeps init's own lines; the flood's are read and forgotten
        pending = b""
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 20):
                *lines, pending = (pending + chunk).split(b"\n")
                own.extend(line.decode() for line in lines if line.startswith(b"monoimage-init"))
        done.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    notice = re.compile(r"monoimage-init \| the log's reader fell behind: (\d+) line\(s\) of "
                        r"output dropped\Z")
    wait_until(lambda: any(notice.match(line) for line in own), 20.0,
               lambda: f"the notice of dropped lines in {own}")
    assert run.stop() == 0
    assert done.wait(scaled(20.0))
    total = re.fullmatch(r"monoimage-init \| (\d+) line\(s\) of output dropped in all: the "
                         r"log's reader did not keep up", own[-2])
    assert total, own[-2:]
    noticed = sum(int(match[1]) for line in own if (match := notice.match(line)))
    assert int(total[1]) >= noticed > 0
    assert own[-1] == "monoimage-init | exit 0"

"""Line splitting of service output."""

from monoimage.init.logs import PARTIAL_AFTER, LineBuffer, prefixed, quote_argv


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

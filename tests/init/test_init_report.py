"""Status records on the wire and as JSON, written without the json module."""

import json

from hypothesis import given
from hypothesis import strategies as st

from monoimage.init.control import format_records, parse_records
from monoimage.init.report import not_ready, status_json, to_json

RECORDS = [
    ("init", [("version", 1), ("pid", 1), ("state", "running"), ("image", "edge"),
              ("uptime_s", 2.5)]),
    ("service", [("name", "web"), ("state", "ready"), ("pid", 7), ("restarts", 0),
                 ("ready_since", 1700000000.25), ("ready_after_ms", 40), ("rss_kib", 2048),
                 ("critical", True), ("last_exit", None)]),
    ("service", [("name", "db"), ("state", "backoff"), ("pid", None), ("restarts", 2),
                 ("ready_since", None), ("ready_after_ms", None), ("rss_kib", None),
                 ("critical", False), ("last_exit", "exit code\t1")]),
    ("end", [("healthy", False), ("services", 2)]),
]


def test_wire_text_and_typed_json():
    text = format_records(RECORDS)
    assert text.splitlines()[1] == ("service\tname=web\tstate=ready\tpid=7\trestarts=0\t"
                                    "ready_since=1700000000.250\tready_after_ms=40\t"
                                    "rss_kib=2048\tcritical=yes\tlast_exit=-")
    records = parse_records(text)
    assert records[2][1]["last_exit"] == "exit code 1", "a TAB never reaches the wire"
    document = json.loads(status_json(records))
    assert document["init"] == {"version": 1, "pid": 1, "state": "running", "image": "edge",
                                "uptime_s": 2.5}
    assert document["services"][0]["ready_since"] == 1700000000.25
    assert document["services"][1] == {
        "name": "db", "state": "backoff", "pid": None, "restarts": 2, "ready_since": None,
        "ready_after_ms": None, "rss_kib": None, "critical": False,
        "last_exit": "exit code 1"}
    assert document["healthy"] is False
    assert not_ready(records) == ["db (backoff)"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=20)


@given(json_values)
def test_hand_written_json_reads_back_with_the_json_module(value):
    assert json.loads(to_json(value)) == value

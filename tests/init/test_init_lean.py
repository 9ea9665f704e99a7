"""The standard-library replacements PID 1 uses instead of costly modules give what those
modules give: typing.NamedTuple (tuples.py), signal.Signals (signals.py), the placeholder and
name regular expressions (render.py, table.py, logs.py), selectors (poller.py), ast.literal_eval
(literal.py)."""

import ast
import os
import re
import signal

import pytest

from monoimage.init.literal import literal_eval
from monoimage.init.logs import quote_argv
from monoimage.init.poller import EVENT_READ, EVENT_WRITE, Poller
from monoimage.init.render import placeholders, render
from monoimage.init.signals import signal_name, signal_number
from monoimage.init.table import Ready, Restart, is_name, is_variable

PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
TRICKY = ["", "{{ a }}", "{{a}}{{ b}}", "{{{ a }}}", "{{ a }", "{{ 1a }}", "{{ a b }}",
          "x {{\t_x9 \n}} y", "{{ $labels.x }}", "{{{{ a }}", "{{ a }}}}", "{ { a } }",
          "{{ é }}", "{{\u2003a\u2003}}", "{{", "}}", "a{{b}}c{{ d }}e{{"]


@pytest.mark.parametrize("text", TRICKY)
def test_placeholders_and_render_match_the_regular_expression(text):
    assert placeholders(text) == list(dict.fromkeys(PLACEHOLDER_RE.findall(text)))
    assert render(text, lambda name: f"<{name}>") == PLACEHOLDER_RE.sub(
        lambda match: f"<{match.group(1)}>", text)


def test_names_and_quoting_match_their_regular_expressions():
    name_re = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*\Z")
    variable_re = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
    safe_re = re.compile(r"[A-Za-z0-9_@%+=:,./-]+\Z")
    for text in ["", "a", "_a", "9", "a-b.c@d_e", "-a", "a b", "é", "a\n", "x=1,y:2/%+", "'"]:
        assert is_name(text) == bool(name_re.match(text)), text
        assert is_variable(text) == bool(variable_re.match(text)), text
        expected = text if safe_re.match(text) else "'" + text.replace("'", "'\\''").replace(
            "\n", "\\n") + "'"
        assert quote_argv([text]) == expected


def test_signal_names_are_those_of_signal_signals():
    assert {number: signal_name(number) for number in map(int, signal.Signals)} == {
        member.value: member.name for member in signal.Signals}
    assert signal_number("SIGTERM") == signal_number("TERM") == signal.SIGTERM
    assert signal_number("SIGIOT") == signal.SIGABRT and signal_number("SIGNOPE") is None
    assert signal_name(99) == "signal 99"


def test_records_behave_as_typing_namedtuples():
    ready = Ready("tcp", "127.0.0.1", 80, None, None, 30.0, 0.1)
    assert ready == ("tcp", "127.0.0.1", 80, None, None, 30.0, 0.1, 200, None)   # defaults
    assert isinstance(ready, tuple)
    assert ready.port == ready[2] == 80 and Ready._fields[0] == "kind"
    assert ready._replace(port=81).port == 81 and ready.port == 80
    assert repr(Restart("never", 0.5, 30.0, 5, 60.0)) == (
        "Restart(policy='never', backoff_initial=0.5, backoff_max=30.0, max_restarts=5, "
        "window=60.0)")
    assert Restart(policy="always", backoff_initial=1, backoff_max=2, max_restarts=3,
                   window=4)._asdict()["window"] == 4
    assert hash(ready) == hash(tuple(ready))
    with pytest.raises(TypeError, match="missing argument 'window'"):
        Restart("never", 0.5, 30.0, 5)
    with pytest.raises(TypeError, match="unexpected argument"):
        Restart("never", 0.5, 30.0, 5, 60.0, colour="red")


def test_poller_reports_readable_and_writable_fds():
    poller = Poller()
    read_end, write_end = os.pipe()
    try:
        poller.register(read_end, EVENT_READ, print)
        poller.register(write_end, EVENT_WRITE, len)
        ready = {key.fd: (events, key.data) for key, events in poller.select(0)}
        assert ready == {write_end: (EVENT_WRITE, len)}
        os.write(write_end, b"x")
        assert {key.fd for key, _ in poller.select(0)} == {read_end, write_end}
        poller.unregister(write_end)
        assert [(key.fd, events) for key, events in poller.select(None)] == [
            (read_end, EVENT_READ)]
        with pytest.raises(KeyError):
            poller.register(read_end, EVENT_READ, print)
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize("text", [
    "{'version': 1, 'services': [{'name': 'a', 'argv': ['x', '-1'], 'mode': 0o644}]}",
    "[" + ", ".join(f"{{'k{i}': [{i}, -{i}.5, None, True, b'x', ...]}}" for i in range(40)) + "]",
    "{" + ", ".join(f"'k{i}': ('t', {i})" for i in range(40)) + "}",
    "  {'a': 'b' 'c'}", "-1", "(1, (2, (3,)))"])
def test_literals_read_as_ast_literal_eval_reads_them(text):
    assert literal_eval(text) == ast.literal_eval(text.lstrip())


@pytest.mark.parametrize(("text", "kind"), [
    ("dict(a=1)", "Call"), ("{1, 2}", "Set"), ("[1] * 10**9", "BinOp"), ("x", "Name"),
    ("[i for i in ()]", "ListComp"), ("__import__('os')", "Call"), ("'a'.upper()", "Call"),
    ("(lambda: 0)()", "Call"), ("{'a': f'{1}'}", "JoinedStr")])
def test_anything_else_is_refused_with_the_expression_it_is(text, kind):
    with pytest.raises(ValueError, match=f"a {kind} expression"):
        literal_eval(text)


def test_probes_come_quickly_after_a_start_then_space_out_up_to_the_interval():
    from monoimage.init.accounts import Account
    from monoimage.init.service import ServiceRun
    from monoimage.init.supervisor import MIN_PROBE_GAP, probe_gap
    from monoimage.init.table import parse_table

    spec = parse_table(repr({"version": 1, "services": [
        {"name": "web", "argv": ["web"], "ready": {"kind": "tcp", "port": 80,
                                                   "interval": 0.5}}]})).services[0]
    run = ServiceRun(spec, Account("root", 0, 0, (0,), "/root"), {})
    run.started_at = 100.0
    assert probe_gap(run, 100.0) == probe_gap(run, 100.05) == MIN_PROBE_GAP
    assert probe_gap(run, 100.8) == pytest.approx(0.1)        # an eighth of the time so far
    assert probe_gap(run, 160.0) == 0.5                       # never more than ready.interval

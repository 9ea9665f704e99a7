"""A read-only root filesystem: init writes only under its run directory, the template
targets and the declared runtime directories (like `podman run --read-only`)."""

from init_harness import PY, init_lines, service, svc, table


def test_init_boots_and_stops_on_a_read_only_root(start_init, tmp_path):
    writable = str(tmp_path)
    # In the namespace's own mount table only: tmp_path stays writable (a bind mount of
    # itself), then everything else, the root included, becomes read-only.
    read_only = ["sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro / && exec "$@"',
                 writable]
    events = tmp_path / "events"
    target = tmp_path / "run" / "config" / "app.conf"
    run = start_init(table(
        service("app", svc("app", events=events),
                runtime_dirs=[{"path": str(tmp_path / "run" / "app"), "owner": "nobody",
                               "mode": 0o700}],
                templates=[{"target": str(target), "content": "name={{ name }}\n"}],
                commands=[{"argv": [PY, "-c", "open('/monoimage-ro-probe', 'w')"],
                           "user": "root"}]),
        site={"name": "edge"},
    ), prefix=read_only)
    assert run.wait() == 3, "the root really is read-only: the probe command cannot write"
    assert init_lines(run.log())[-1] == (
        "OSError: [Errno 30] Read-only file system: '/monoimage-ro-probe'")

    run = start_init(table(
        service("app", svc("app", events=events),
                runtime_dirs=[{"path": str(tmp_path / "run" / "app"), "owner": "nobody",
                               "mode": 0o700}],
                templates=[{"target": str(target), "content": "name={{ name }}\n"}]),
        site={"name": "edge"},
    ), prefix=read_only)
    run.wait_state("app", "ready")
    assert target.read_text() == "name=edge\n"
    assert run.stop() == 0

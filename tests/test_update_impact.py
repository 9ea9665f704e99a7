"""What an update touches, pure: old → new, and which services' runtime closures hold it."""

from __future__ import annotations

from monoimage.plan.update_impact import PackageFacts, facts_from_manifest, update_impact

SERVICES = ("chrony", "mosquitto", "nginx", "redis")
BEFORE = {
    "libtirpc3": PackageFacts("1.3.3", ("chrony", "mosquitto", "nginx")),
    "libc6": PackageFacts("2.36", (), base=True),
    "ca-certificates": PackageFacts("2023", ("base",)),
    "ruby": PackageFacts("3.1", ("config-tools",)),
    "redis-server": PackageFacts("7.0", ("redis",)),
    "old-lib": PackageFacts("1", ("redis",)),
}


def test_each_changed_package_names_the_services_that_run_it() -> None:
    after = dict(BEFORE)
    for name in ("libtirpc3", "libc6", "ca-certificates", "ruby"):
        after[name] = PackageFacts(BEFORE[name].version + "+1", BEFORE[name].needed_by,
                                   BEFORE[name].base)
    del after["old-lib"]
    after["new-lib"] = PackageFacts("2", ("nginx",))
    found = {i.name: i for i in update_impact(BEFORE, after, SERVICES)}
    assert set(found) == {"libtirpc3", "libc6", "ca-certificates", "ruby", "old-lib",
                          "new-lib"}
    assert found["libtirpc3"].services == ("chrony", "mosquitto", "nginx")
    assert found["libtirpc3"].touches == "chrony, mosquitto, nginx"
    assert (found["libtirpc3"].before, found["libtirpc3"].after) == ("1.3.3", "1.3.3+1")
    for name in ("libc6", "ca-certificates"):
        assert found[name].in_base and found[name].services == SERVICES
        assert found[name].touches == "every service (base)"
    assert found["ruby"].config_only and found["ruby"].services == ()
    assert found["ruby"].touches == "config-time tools only"
    assert (found["old-lib"].after, found["old-lib"].services) == (None, ("redis",))
    assert (found["new-lib"].before, found["new-lib"].services) == (None, ("nginx",))


def test_the_manifest_gives_the_same_facts() -> None:
    doc = {"services": ["chrony"], "packages": [
        {"name": "libc6", "version": "2.36", "needed_by": [],
         "why": "minbase (distro minimal set)"},
        {"name": "chrony", "version": "4.3", "needed_by": ["chrony"],
         "why": "requested by chrony"}]}
    services, facts = facts_from_manifest(doc)
    assert services == ("chrony",)
    assert facts == {"libc6": PackageFacts("2.36", (), base=True),
                     "chrony": PackageFacts("4.3", ("chrony",))}

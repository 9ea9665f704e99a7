"""`boot --control-plane standin`: a stand-in control plane for trials, in its own container.

The stand-in is the message bus of an OpenStack control plane and nothing more: RabbitMQ from
Debian's `rabbitmq-server`, built by monoimage itself from `control-plane-standin.yaml` (beside
the compute recipe), so no registry outside is needed. Its image is cached under its tag and
rebuilt when the recipe changes (the image's recipe-digest label says which recipe made it).

A boot against it: start the stand-in (its AMQP port published on a free loopback port), add a
user and a vhost with a generated password, check that AMQP really answers (a login from the
host, `amqp_check`), hand the transport URL to the compute image as its secret site value
`transport_url`, boot the image, and remove the stand-in afterwards: on success, failure and
Ctrl-C alike (`keep` keeps both and says how to remove them).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from monoimage.errors import UserError
from monoimage.image import LABEL_RECIPE_DIGEST
from monoimage.pipeline.amqp_check import AmqpError, amqp_login
from monoimage.pipeline.boot import BootReport, boot, read_table, wait_healthy
from monoimage.pipeline.build import BuildOptions, build
from monoimage.pipeline.host_probes import published_ports
from monoimage.plan.image_facts import recipe_from_image
from monoimage.plan.run_profile import container_spec, podman_run_args
from monoimage.recipe.load import load_recipe
from monoimage.recipe.model import Recipe
from monoimage.tools import podman

STANDIN_FILE = "control-plane-standin.yaml"
SITE_VALUE = "transport_url"        # the compute recipe's site value the bus's URL goes to
AMQP_PORT = "5672/tcp"
BUS_USER = "openstack"
BUS_VHOST = "openstack"
RABBITMQCTL = ("/usr/sbin/rabbitmqctl",)
AS_BROKER = ("--user", "rabbitmq", "--env", "HOME=/var/lib/rabbitmq")
LOGIN_TIMEOUT = 60.0                # seconds for the first AMQP login to pass after the start


@dataclass(frozen=True)
class StandIn:
    """A running stand-in control plane."""

    container: str
    image: str
    built: bool                    # built for this boot (missing, or its recipe changed)
    port: int                      # the AMQP port on the host's loopback
    transport_url: str             # secret: holds the generated password
    broker: str                    # what the broker said it is (`RabbitMQ 3.10.8`)
    ready_after_ms: float          # container start → the AMQP login passed


def standin_recipe_path(compute_recipe: Path | None) -> Path:
    """The stand-in's recipe: beside the compute recipe (its services/ folder holds rabbitmq),
    else ./recipes/."""
    folder = compute_recipe.parent if compute_recipe is not None else Path("recipes")
    path = folder / STANDIN_FILE
    if not path.is_file():
        raise UserError(f"--control-plane standin: no {STANDIN_FILE} in {folder}/ (the "
                        f"stand-in's recipe lives beside the compute recipe)")
    return path


def image_state(labels: Mapping[str, str] | None, recipe: Recipe) -> str:
    """`reuse` when the cached image was built from this very recipe, else `missing` or
    `stale` (built from another version of it): then it is built again."""
    if labels is None:
        return "missing"
    return "reuse" if labels.get(LABEL_RECIPE_DIGEST) == recipe.digest else "stale"


def ensure_image(recipe: Recipe, tag: str, progress: Callable[[str], None]) -> bool:
    """The stand-in's image under `tag`, built when missing or stale; whether it was built."""
    try:
        labels: dict[str, str] | None = podman.image_inspect(tag).get("Labels") or {}
    except podman.PodmanError:
        labels = None
    state = image_state(labels, recipe)
    if state == "reuse":
        return False
    progress(f"building the stand-in control plane {tag} ({state}; once, then cached)")
    out_dir = Path(tempfile.mkdtemp(prefix="monoimage-standin-"))
    try:
        build(recipe, BuildOptions(tag=tag, out_dir=out_dir))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    return True


@contextmanager
def standin(recipe_path: Path, *, tag: str | None = None, keep: bool = False,
            timeout: float = 180.0, progress: Callable[[str], None] = lambda _: None
            ) -> Iterator[StandIn]:
    """Start the stand-in of `recipe_path` and yield it once AMQP lets its user in; the
    container is removed on the way out unless `keep`."""
    recipe = load_recipe(recipe_path)
    image = tag or recipe.reference
    built = ensure_image(recipe, image, progress)
    name = f"monoimage-standin-{secrets.token_hex(3)}"
    spec = container_spec(recipe, image=image, name=name, ephemeral=True,
                          host_ip="127.0.0.1", random_host_ports=True)
    progress(f"starting the stand-in control plane {name}")
    began = time.monotonic()
    try:
        podman.run_detached(podman_run_args(spec))
        healthy, _, ended = wait_healthy(name, began + timeout)
        if not healthy:
            raise UserError(f"the stand-in control plane {name} did not start "
                            f"({'exit code ' + str(ended) if ended is not None else 'timeout'}"
                            f"): {podman.logs(name, tail=5).strip()[-400:]}")
        port = published_ports(podman.container_inspect(name) or {}).get(AMQP_PORT)
        if port is None:
            raise UserError(f"the stand-in control plane {name} publishes no {AMQP_PORT}")
        password = secrets.token_urlsafe(18)
        progress(f"adding user {BUS_USER} and vhost {BUS_VHOST} to the stand-in")
        add_bus_user(name, password)
        broker = wait_login(port, password, time.monotonic() + LOGIN_TIMEOUT)
        yield StandIn(container=name, image=image, built=built, port=port,
                      transport_url=f"rabbit://{BUS_USER}:{password}@127.0.0.1:{port}/"
                                    f"{BUS_VHOST}",
                      broker=broker, ready_after_ms=(time.monotonic() - began) * 1000)
    finally:
        if not keep:
            podman.remove(name)


def add_bus_user(container: str, password: str) -> None:
    """The vhost, the user (its password on rabbitmqctl's stdin, never on an argv) and its
    permissions on the vhost."""
    steps: list[tuple[tuple[str, ...], str | None]] = [
        (("add_vhost", BUS_VHOST), None),
        (("add_user", BUS_USER), password + "\n"),
        (("set_permissions", "-p", BUS_VHOST, BUS_USER, ".*", ".*", ".*"), None),
    ]
    for argv, given in steps:
        done = podman.exec_in(container, *RABBITMQCTL, *argv, options=AS_BROKER,
                              input=given, timeout=120)
        if done.exit_code != 0:
            raise UserError(f"the stand-in control plane: rabbitmqctl {argv[0]} failed: "
                            f"{podman.last_line(done)}")


def wait_login(port: int, password: str, deadline: float) -> str:
    """Log in over AMQP until it passes (the broker may still be opening the vhost)."""
    while True:
        try:
            return amqp_login("127.0.0.1", port, BUS_USER, password, BUS_VHOST)
        except AmqpError as error:
            if time.monotonic() >= deadline:
                raise UserError(f"the stand-in control plane does not let {BUS_USER} in over "
                                f"AMQP: {error}") from None
        time.sleep(0.5)


def boot_with_standin(image: str, recipe: Recipe | None, *, recipe_path: Path | None,
                      site: Mapping[str, str], keep: bool = False, standin_tag: str | None = None,
                      progress: Callable[[str], None] = lambda _: None,
                      **boot_options: Any) -> BootReport:
    """`boot` with the stand-in's transport URL as the site value `transport_url`; `recipe`
    None reads the image's facts from the image (as `boot` does)."""
    notes: tuple[str, ...] = ()
    if recipe is None:
        recipe, read = recipe_from_image(image, podman.image_inspect(image), read_table(image))
        notes = tuple(read)
    if SITE_VALUE not in recipe.site_names:
        raise UserError(f"--control-plane standin: {recipe.name} has no site value "
                        f"{SITE_VALUE!r} to give the message bus's address to")
    if SITE_VALUE in site:
        raise UserError(f"--control-plane standin gives {SITE_VALUE}: do not give "
                        f"--site {SITE_VALUE} too")
    with standin(standin_recipe_path(recipe_path), tag=standin_tag, keep=keep,
                 progress=progress) as plane:
        given = {**site, SITE_VALUE: plane.transport_url}
        report = boot(image, recipe, keep=keep, site=given, progress=progress, **boot_options)
        origin = "built for this boot" if plane.built else "cached image"
        answered = (f"stand-in control plane {plane.container} ({plane.image}, {origin}): "
                    f"{plane.broker} answered an AMQP login on 127.0.0.1:{plane.port} "
                    f"{plane.ready_after_ms / 1000:.1f} s after its start; its URL went to "
                    f"the site value {SITE_VALUE}")
        said = [answered]
        if keep:
            said.append(f"stand-in kept running: podman rm --force --volumes "
                         f"{plane.container}")
        else:
            said.append(f"the stand-in {plane.container} is removed after the boot")
        return replace(report, notes=(*notes, *report.notes, *said))

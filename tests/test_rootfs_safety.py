"""Writes into an image root stay inside it: symlinks of the image are resolved as the image sees
them (Debian's /var/run -> /run), never by the build host, and the kernel's folders are refused.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from buildsupport import HELLO, TINY_IMAGE, leftovers, opened, remove_images, unique_tag
from monoimage.errors import UserError
from monoimage.pipeline.build import BuildOptions, build
from monoimage.pipeline.install_init import add_service_table, is_init_path
from monoimage.plan.service_table import template_target
from monoimage.recipe.load import load_recipe
from monoimage.tools import buildah
from monoimage.tools.cache_dir import default_cache_dir
from monoimage.tools.in_root import RootPathError, resolve_in_root, writable_path, write_text
from monoimage.tools.skopeo import load_image
from recipe_files import write_recipe

MONOIMAGE = (sys.executable, "-c", "from monoimage.cli import main; main()")


def debian_like_root(root: Path) -> Path:
    """The links of a Debian root that lead out of it when the build host follows them."""
    for folder in ("run", "usr/lib", "etc", "var", "proc/self"):
        (root / folder).mkdir(parents=True)
    (root / "var/run").symlink_to("/run")
    (root / "lib").symlink_to("usr/lib")
    (root / "etc/mtab").symlink_to("../proc/self/mounts")
    (root / "var/up").symlink_to("../../../../../../etc")
    (root / "var/loop").symlink_to("loop")
    (root / "var/top").symlink_to("/")
    return root


# ------------------------------------------------------------------ the resolver


def test_absolute_links_resolve_against_the_root(tmp_path):
    root = debian_like_root(tmp_path / "root")
    assert resolve_in_root(root, "/var/run/x.conf") == "/run/x.conf"
    assert resolve_in_root(root, "/lib/x") == "/usr/lib/x"


def test_dotdot_never_climbs_above_the_root(tmp_path):
    root = debian_like_root(tmp_path / "root")
    assert resolve_in_root(root, "/var/up/hosts") == "/etc/hosts"
    assert resolve_in_root(root, "/../../../etc/x") == "/etc/x"


def test_a_link_at_the_last_component_is_kept_when_asked(tmp_path):
    root = debian_like_root(tmp_path / "root")
    assert resolve_in_root(root, "/var/run", follow_last=False) == "/var/run"
    assert resolve_in_root(root, "/var/run/a", follow_last=False) == "/run/a"


def test_a_link_loop_is_an_error_not_a_hang(tmp_path):
    root = debian_like_root(tmp_path / "root")
    with pytest.raises(RootPathError, match="too many levels of symbolic links"):
        resolve_in_root(root, "/var/loop/x")


@pytest.mark.parametrize(("path", "shown"), [
    ("/etc/mtab/x", "/etc/mtab/x (that is /proc/self/mounts/x in the image) is in /proc"),
    ("/sys/kernel/x", "/sys/kernel/x is in /sys"),
    ("/dev/null", "/dev/null is in /dev"),
    ("/var/top", "/var/top (that is / in the image) is the image's root directory"),
    ("/", "/ is the image's root directory"),
])
def test_kernel_folders_and_the_root_itself_are_refused(tmp_path, path, shown):
    root = debian_like_root(tmp_path / "root")
    with pytest.raises(RootPathError) as caught:
        writable_path(root, path, "services/x.yaml: config.templates[0].dest")
    assert str(caught.value) == f"services/x.yaml: config.templates[0].dest: {shown}" + (
        ", which the kernel provides at run time: nothing the build puts there would be seen"
        if " is in /" in shown else "")


def test_a_write_through_var_run_lands_in_the_images_run(tmp_path):
    root = debian_like_root(tmp_path / "root")
    written = write_text(root, "/var/run/new/x.conf", "text", 0o640, "test")
    assert written == root / "run/new/x.conf"
    assert (root / "run/new/x.conf").read_text() == "text"
    assert (root / "run/new/x.conf").stat().st_mode & 0o777 == 0o640


def test_a_template_link_under_var_run_is_in_the_init_layer_where_it_lands(tmp_path):
    root = debian_like_root(tmp_path / "root")
    recipe = load_recipe(_tiny(tmp_path / "recipe", _hello_with("/var/run/hello/x.conf")))
    add_service_table(root, recipe)
    in_init = is_init_path(recipe, root)
    assert (root / "run/hello/x.conf").is_symlink()
    assert in_init("/run/hello/x.conf")  # where the link is: /var/run is the image's /run
    assert not in_init("/var/run") and not in_init("/run")  # the image's own link and folder
    assert in_init("/etc/hello/index.html")  # hello's own template, under no link


def test_a_template_dest_into_proc_names_its_recipe_key(tmp_path):
    recipe_path = _tiny(tmp_path / "recipe", _hello_with("/etc/mtab/x"))
    root = debian_like_root(tmp_path / "root")
    with pytest.raises(UserError) as caught:
        add_service_table(root, load_recipe(recipe_path))
    message = str(caught.value)
    assert message.endswith("hello.yaml: config.templates[1].dest: /etc/mtab/x (that is "
                            "/proc/self/mounts/x in the image) is in /proc, which the kernel "
                            "provides at run time: nothing the build puts there would be seen")
    assert not (root / "proc/self/mounts").exists()


# ------------------------------------------------------------------ real builds


def _hello_with(dest: str, **run: str) -> str:
    """buildsupport's hello service with a second template at `dest` and extra run keys."""
    text = HELLO.format(package="busybox").replace(
        "run:\n",
        f"    - dest: {dest}\n      content: \"x\\n\"\nrun:\n", 1)
    for key, value in run.items():
        text = text.replace("run:\n", f"run:\n  {key}: {value}\n", 1)
    return text


def _tiny(folder: Path, hello: str) -> Path:
    return write_recipe(folder, {"hello": hello}, image=TINY_IMAGE.format(repositories=""))


def test_a_template_under_var_run_lands_in_the_images_run_not_the_hosts(tmp_path):
    name = f"monoimage-test-{secrets.token_hex(4)}"
    dest = f"/var/run/{name}/escape.conf"
    recipe = load_recipe(_tiny(tmp_path / "recipe", _hello_with(dest)))
    tag = unique_tag("var-run")
    host_run = Path("/run") / name
    try:
        build(recipe, BuildOptions(tag=tag, cache_dir=default_cache_dir(),
                                   out_dir=tmp_path / "out", source_date_epoch=0))
        assert not os.path.lexists(host_run), "the build wrote into the build host's /run"
        with opened(tag) as (_container, root):
            link = root / "run" / name / "escape.conf"
            assert link.is_symlink()
            assert os.readlink(link) == template_target(dest)
            assert (root / "var/run").is_symlink()  # the image's own link is untouched
        # layers by package: the link is in the init layer (the top), with the other template
        top = load_image(tag, tmp_path / "oci").layers[-1]
        assert f"run/{name}/escape.conf" in {f.path.strip("/") for f in top.files}
    finally:
        remove_images(tag)
        if os.path.lexists(host_run):
            subprocess.run(["rm", "-rf", str(host_run)], check=False)


def _failed_build(tmp_path: Path, hello: str) -> tuple[subprocess.CompletedProcess[str], str]:
    build_id = secrets.token_hex(6)
    tag = unique_tag("refused")
    done = subprocess.run([*MONOIMAGE, "build", "-q", "-t", tag, "--build-id", build_id,
                           "--out-dir", str(tmp_path / "out"),
                           str(_tiny(tmp_path / "recipe", hello))],
                          capture_output=True, text=True, check=False)
    assert buildah.image_id(tag) is None, "a refused build tagged its image"
    assert leftovers(build_id) == ([], [])
    assert not (tmp_path / "out").exists()
    return done, done.stderr


def test_a_run_user_missing_from_the_image_is_one_line_and_nothing_is_tagged(tmp_path):
    done, stderr = _failed_build(tmp_path, _hello_with("/etc/hello/other.html",
                                                       user="monoimage-nobody"))
    assert done.returncode == 2, stderr
    assert stderr.splitlines() == [
        "monoimage: " + str(tmp_path / "recipe/services/hello.yaml") + ": run.user: user "
        "'monoimage-nobody' does not exist in the image (not in its /etc/passwd; is the "
        "package that creates it in the service's packages?)"]


def test_a_template_dest_that_is_a_directory_in_the_image_is_one_line(tmp_path):
    done, stderr = _failed_build(tmp_path, _hello_with("/etc/apt"))
    assert done.returncode == 2, stderr
    assert stderr.splitlines() == [
        "monoimage: " + str(tmp_path / "recipe/services/hello.yaml")
        + ": config.templates[1].dest: /etc/apt is a directory in the image"]

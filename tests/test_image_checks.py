"""What only a build can tell: the recipe's users and groups against the image's databases
(pure parts; tests/test_rootfs_safety.py builds a recipe whose run user is missing)."""

from __future__ import annotations

from pathlib import Path

from buildsupport import HELLO, TINY_IMAGE
from monoimage.pipeline.image_checks import account_names, missing_accounts, named_accounts
from monoimage.recipe.load import load_recipe
from recipe_files import write_recipe

SERVICE = HELLO.format(package="busybox").replace(
    "run:\n", "  commands:\n    - argv: [/bin/true]\n      user: nobody\n"
    "runtime_dirs:\n  - path: /run/hello\n    owner: www-data\n    group: adm\n"
    "run:\n  user: hello\n  group: hello\n", 1)


def _recipe(tmp_path: Path):
    return load_recipe(write_recipe(tmp_path, {"hello": SERVICE},
                                    image=TINY_IMAGE.format(repositories="")))


def test_every_named_account_with_its_recipe_key(tmp_path):
    source = str(tmp_path / "services/hello.yaml")
    assert [(a.kind, a.name, a.where.removeprefix(source + ": "))
            for a in named_accounts(_recipe(tmp_path))] == [
        ("user", "hello", "run.user"), ("group", "hello", "run.group"),
        ("user", "nobody", "config.commands[0].user"),
        ("user", "root", "config.templates[0].owner"),
        ("user", "www-data", "runtime_dirs[0].owner"),
        ("group", "adm", "runtime_dirs[0].group"),
    ]


def test_missing_accounts_are_the_ones_neither_database_lists(tmp_path):
    users = account_names("root:x:0:0:root:/root:/bin/sh\n# comment\nwww-data:x:33:33::/:/x\n"
                          "nobody:x:65534:65534::/:/x\n")
    groups = account_names("root:x:0:\nhello:x:100:\n")
    assert [(a.kind, a.name) for a in missing_accounts(_recipe(tmp_path), users, groups)] == [
        ("user", "hello"), ("group", "adm")]


def test_a_root_without_an_account_database_is_not_checked(tmp_path):
    assert missing_accounts(_recipe(tmp_path), None, None) == []

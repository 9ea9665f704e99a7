"""Image references: the one grammar every image name, tag and CLI image argument is checked by."""

import pytest

from monoimage.recipe.reference import (
    ReferenceError,
    check_image,
    check_name,
    check_tag,
    parse_reference,
)


@pytest.mark.parametrize("text, name, tag, digest", [
    ("localhost/monoimage-edge-lite:latest", "localhost/monoimage-edge-lite", "latest", None),
    ("monoimage-edge:1", "monoimage-edge", "1", None),
    ("registry.example:5000/a/b_c:v1.2@sha256:" + "a" * 64, "registry.example:5000/a/b_c",
     "v1.2", "sha256:" + "a" * 64),
    ("localhost:5000/x", "localhost:5000/x", None, None),
])
def test_references_are_split_into_name_tag_and_digest(text, name, tag, digest):
    reference = parse_reference(text)
    assert (reference.name, reference.tag, reference.digest) == (name, tag, digest)
    assert str(reference) == text


@pytest.mark.parametrize("text", ["-rm", "--rootfs=/", "x:", "a\nb", "a b", "x:" + "t" * 129,
                                  "UPPER", "a//b", "a/-b", "", "a@sha256:short"])
def test_what_is_not_a_reference_is_refused(text):
    with pytest.raises(ReferenceError):
        parse_reference(text)


def test_a_name_longer_than_the_spec_allows_is_refused():
    with pytest.raises(ReferenceError, match="longer than 255"):
        parse_reference("x" * 300)
    with pytest.raises(ReferenceError, match="at most 255"):
        check_name("x" * 300)


def test_image_ids_are_images_too():
    assert check_image("abcdef012345") == "abcdef012345"
    assert check_image("sha256:" + "0" * 64) == "sha256:" + "0" * 64


def test_names_and_tags_alone():
    assert check_name("localhost/monoimage-edge-lite") == "localhost/monoimage-edge-lite"
    assert check_tag("2026.12-1") == "2026.12-1"
    for bad in ("-x", ".x", "a:b", "a\n"):
        with pytest.raises(ReferenceError):
            check_tag(bad)
    with pytest.raises(ReferenceError):
        check_name("a:b")

"""The image contract: what a golden image holds where, and the names it carries.

Every part of monoimage that writes or reads an image (the build, the comparators, boot, the
host artefacts, the footprint) takes these names from here, so the contract is spelled once.
monoimage-init, which ships alone into the image, cannot import this module: the few names it
shares (the service table's path, the site-value prefix) are checked equal by a test.
"""

from __future__ import annotations

# ---------------------------------------------------------------- paths inside the image

INIT_LIB = "/usr/lib/monoimage"
INIT_PACKAGE = f"{INIT_LIB}/monoimage_init"
INIT_LAUNCHER = "/usr/bin/monoimage-init"
IMAGE_PYTHON = "/usr/bin/python3"
ENTRYPOINT = (INIT_LAUNCHER, "run")
# `health` exits 0 when every service is ready (1 otherwise): what podman's health check wants.
HEALTH_CMD = (INIT_LAUNCHER, "health")
STATUS_CMD = (INIT_LAUNCHER, "status", "--json")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

TABLE_PATH = "/usr/share/monoimage/services.py"
MANIFEST_PATH = "/usr/share/monoimage/manifest.json"
SBOM_PATH = "/usr/share/monoimage/sbom.spdx.json"
# The init renders templates here (the root may be read-only); a template's dest links to it.
CONFIG_ROOT = "/run/monoimage/config"

# monoimage-init reads site value NAME from the environment as MONOIMAGE_SITE_NAME.
SITE_ENV_PREFIX = "MONOIMAGE_SITE_"

# ---------------------------------------------------------------- labels and annotations

LABEL_TITLE = "org.opencontainers.image.title"
LABEL_VERSION = "org.opencontainers.image.version"
LABEL_CREATED = "org.opencontainers.image.created"
LABEL_SOURCE = "org.opencontainers.image.source"
LABEL_DESCRIPTION = "org.opencontainers.image.description"
LABEL_RECIPE_DIGEST = "io.monoimage.recipe-digest"
LABEL_MANIFEST_DIGEST = "io.monoimage.manifest-digest"
LABEL_PACKAGES_DIGEST = "io.monoimage.packages-digest"  # layered comparators: their pins
LABEL_PACKAGER = "io.monoimage.packager"
LABEL_SERVICES = "io.monoimage.services"
LABEL_STRATEGY = "io.monoimage.strategy"
LABEL_HEALTH_CMD = "io.monoimage.health-cmd"
LABEL_CAPABILITIES = "io.monoimage.capabilities"
LABEL_SERVICE_PORTS = "io.monoimage.service-ports"  # "dnsmasq=53/udp,53/tcp;redis=6379/tcp"
LABEL_MEMORY = "io.monoimage.runtime.memory"
LABEL_PIDS_LIMIT = "io.monoimage.runtime.pids-limit"
LABEL_READ_ONLY = "io.monoimage.runtime.read-only"
# the host integration (`runtime:`), each written only when the recipe asks for it
LABEL_NETWORK = "io.monoimage.runtime.network"        # "host"
LABEL_PID = "io.monoimage.runtime.pid"                # "host"
LABEL_IPC = "io.monoimage.runtime.ipc"                # "host"
LABEL_PRIVILEGED = "io.monoimage.runtime.privileged"  # "true"
LABEL_DEVICES = "io.monoimage.runtime.devices"        # "/dev/kvm,/dev/net/tun"
LABEL_HOST_MOUNTS = "io.monoimage.runtime.host-mounts"  # "/lib/modules:/lib/modules:ro,…"
LABEL_SYSCTLS = "io.monoimage.runtime.sysctls"        # JSON object: {"net.ipv4.ip_forward": "1"}
# layering: packages: which layer holds which package (JSON), what a later build keeps
LABEL_LAYER_PLAN = "io.monoimage.layer-plan"
# `buildah commit` names the image a container came from; a temporary base's name differs
# from build to build, so the build drops these.
BASE_ANNOTATIONS = ("org.opencontainers.image.base.name",
                    "org.opencontainers.image.base.digest")

# ---------------------------------------------------------------- media types

MEDIA_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_OCI_GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
GZIP_LAYER_TYPES = frozenset({
    MEDIA_OCI_GZIP_LAYER,
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
})
PLAIN_LAYER_TYPES = frozenset({
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.diff.tar",
})

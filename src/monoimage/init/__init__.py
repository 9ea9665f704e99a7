"""monoimage-init: PID 1 of a monoimage golden image.

It configures every service of the image (runtime directories, templates, one-shot commands),
then runs them (dependency order, readiness probes, restarts with backoff, prefixed logs,
status over a unix socket) and stops them in reverse order, reaping every orphan meanwhile.

Standard library only, and only the part of it that Debian's python3-minimal ships (no json,
asyncio, dataclasses, shlex, shutil, ...): the build copies this package alone into the image,
so it imports nothing from the rest of monoimage and uses relative imports only.
"""

"""A local test image for the Docker runtime, built without any registry.

The image is an imported tarball holding only a directory skeleton (and the host's /bin,
/lib* symlinks on a merged-/usr system); at run time the host's /usr, the Python runtime
this process runs on and the project checkout (with its virtual environment) are mounted
read-only at their own paths. Paths come from `sys.executable` and this file's location, so
it works wherever the checkout lives. Run `python -m testkit.docker_image` to build it.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
from pathlib import Path

from policies.schema import ContainerSettings

TAG = "tierserve-test:local"
REPO_ROOT = Path(__file__).resolve().parents[1]
_TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def _host_links() -> tuple[dict[str, str], list[str]]:
    """(symlinks to recreate in the image, real host folders to mount) for /bin, /lib*..."""
    links, mounts = {}, []
    for name in _TOP_LEVEL:
        path = Path("/") / name
        if path.is_symlink():
            links[name] = os.readlink(path)
        elif path.is_dir():
            mounts.append(str(path))
    return links, mounts


def rootfs_tarball() -> bytes:
    links, mounts = _host_links()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, text: str) -> None:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))

        for name in ("usr", "etc", "proc", "sys", "dev", "root", "run", "var", "models"):
            add_dir(name)
        add_dir("tmp", 0o1777)
        add_dir("var/tmp", 0o1777)
        for mount in mounts:
            add_dir(mount.lstrip("/"))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        add_file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")
        add_file("etc/group", "root:x:0:\n")
    return buf.getvalue()


def _mount_roots() -> list[str]:
    """Host folders the container needs, without ones nested inside another."""
    _, host_dirs = _host_links()
    wanted = ["/usr", *host_dirs, sys.base_prefix, sys.prefix, str(REPO_ROOT)]
    roots: list[str] = []
    for path in sorted({str(Path(p).resolve()) for p in wanted}, key=len):
        if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
            roots.append(path)
    return roots


def container_settings(**overrides: object) -> ContainerSettings:
    """Settings that run our model server in the test image with this interpreter."""
    fields: dict[str, object] = {
        "image": TAG,
        "kind": "tierserve",
        "command": [sys.executable, "-m", "tierserve.cli", "model-server"],
        "volumes": {p: p for p in _mount_roots()},
        # PYTHONPATH: this checkout's code (mounted above), whichever checkout the venv's
        # editable install points at (a git worktree is not mounted otherwise).
        "env": {"TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONPATH": str(REPO_ROOT)},
        "memory": "2g",
        "cpus": 1.0,
    }
    fields.update(overrides)
    return ContainerSettings.model_validate(fields)


def ensure_test_image(runtime: object, rebuild: bool = False) -> str:
    """Import the test image into the engine behind `runtime` (a DockerRuntime) if missing."""
    from orchestrator.docker_runtime import DockerRuntime

    assert isinstance(runtime, DockerRuntime)
    if rebuild or not runtime.has_image(TAG):
        runtime.import_image(rootfs_tarball(), TAG)
    return TAG


def main() -> int:
    import tempfile

    from orchestrator.docker_runtime import DockerRuntime

    runtime = DockerRuntime(Path(tempfile.gettempdir()), scope="testimage")
    try:
        print(ensure_test_image(runtime, rebuild="--rebuild" in sys.argv))
        print("mounts:", " ".join(_mount_roots()))
    finally:
        runtime.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A Prometheus image built on this machine, from Debian's `prometheus` package.

No image can be pulled here, so the compose test runs Debian's Prometheus binary in an image
imported from a tarball (the binary, the C library it links, an /etc skeleton). The package
is fetched with `apt-get download` and unpacked with `dpkg-deb`: nothing is installed.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

IMAGE = "tierserve-prometheus:local"


def debian_binaries(dest: Path) -> Path | None:
    """A folder holding `prometheus` and `promtool`, or None when the package is out of reach."""
    on_path = shutil.which("prometheus"), shutil.which("promtool")
    if all(on_path):
        return Path(str(on_path[0])).parent
    dest.mkdir(parents=True, exist_ok=True)
    fetched = subprocess.run(["apt-get", "download", "prometheus"], cwd=dest,
                             capture_output=True, text=True, timeout=300)
    debs = sorted(dest.glob("prometheus_*.deb"))
    if fetched.returncode != 0 or not debs:
        return None
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(dest / "root")], check=True)
    folder = dest / "root" / "usr" / "bin"
    return folder if (folder / "prometheus").is_file() else None


def _libraries(binary: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) > parts.index("=>") + 1 and parts[-1].startswith("("):
            path = parts[parts.index("=>") + 1]
        elif parts and parts[0].startswith("/"):
            path = parts[0]
        else:
            continue
        found.append(Path(path))
    return found


def _tarball(binary: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add_text(name: str, text: str) -> None:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))

        for name in ("prometheus", "tmp", "etc/prometheus"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(binary), "bin/prometheus")
        # Each library at the path the loader asked for, as a real file (no /lib symlinks here).
        for lib in _libraries(binary):
            tar.add(str(lib.resolve()), str(lib).lstrip("/"))
        add_text("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:\n")
        add_text("etc/group", "root:x:0:\nnogroup:x:65534:\n")
        add_text("etc/nsswitch.conf", "hosts: files dns\n")
    return buf.getvalue()


def ensure_image(work: Path) -> str | None:
    """The local Prometheus image's tag, building it when missing; None when it cannot be."""
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode == 0:
        return IMAGE
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        folder = debian_binaries(Path(tmp))
        if folder is None:
            return None
        subprocess.run(
            ["docker", "import", "--change", 'ENTRYPOINT ["/bin/prometheus"]',
             "--change", "ENV LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu",
             "--change", "WORKDIR /prometheus", "-", IMAGE],
            input=_tarball(folder / "prometheus"), capture_output=True, check=True, timeout=300)
    return IMAGE

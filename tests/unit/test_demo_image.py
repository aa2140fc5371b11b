import io
import tarfile

from dockyard.image.demo import WELCOME, busybox_rootfs


def test_rootfs_has_busybox_applet_links_and_files(tmp_path):
    fake = tmp_path / "busybox"
    fake.write_bytes(b"\x7fELF fake")
    data = busybox_rootfs(fake, ["busybox", "sh", "httpd"], {"var/www/index.html": WELCOME})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["bin/busybox"].isfile()
        assert members["bin/sh"].issym() and members["bin/sh"].linkname == "busybox"
        assert "bin/httpd" in members and "bin/bin/busybox" not in members
        assert members["var/www"].isdir() and members["tmp"].mode == 0o1777
        assert tar.extractfile("var/www/index.html").read() == WELCOME

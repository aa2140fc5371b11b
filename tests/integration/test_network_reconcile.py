"""dockyard starts and serves networks while Docker does not answer; once Docker answers,
the reconcile loop makes the missing Docker networks."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading

from tests.support.cloud import new_cloud, unique_cidr
from tests.support.docker import TEST_LABEL, build_busybox_image, docker_client
from tests.support.network import eventually

N = "/networking/v2.0"
IMAGE = "dockyard-net-busybox:test"


class _Pump(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect("/var/run/docker.sock")

        def copy(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        t = threading.Thread(target=copy, args=(upstream, self.request), daemon=True)
        t.start()
        copy(self.request, upstream)
        t.join(timeout=5)
        upstream.close()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def test_docker_down_at_start_then_reconciled(tmp_path):
    docker_client()  # the real engine must answer for the second half
    sock = tmp_path / "docker.sock"
    cloud = new_cloud(tmp_path / "home", docker=True, env={"DOCKYARD_DOCKER_URL": f"unix://{sock}"})
    cloud.start()
    proxy = None
    try:
        demo = cloud.client(cloud.token("demo"))
        private = demo.get(f"{N}/networks?name=private").json()["networks"]
        assert len(private) == 1
        r = demo.post(f"{N}/networks", json={"network": {"name": "later"}})
        net = r.json()["network"]
        cidr = unique_cidr()
        r = demo.post(f"{N}/subnets", json={"subnet": {"network_id": net["id"], "cidr": cidr}})
        assert r.status_code == 201, r.text
        assert not docker_client().networks.list(names=[f"dockyard-net-{net['id']}"])

        proxy = _Server(str(sock), _Pump)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()

        def made() -> bool:
            names = {n.name for n in docker_client().networks.list()}
            return {f"dockyard-net-{net['id']}", f"dockyard-net-{private[0]['id']}"} <= names

        assert eventually(made, 15, interval=0.5), cloud.tail(20)

        # a clean shutdown removes Docker networks no container uses (the next start makes
        # them again) but keeps one a stopped container is still attached to
        build_busybox_image(IMAGE)
        stopped = docker_client().containers.create(
            IMAGE, network=f"dockyard-net-{net['id']}", labels={TEST_LABEL: "1"}
        )
        cloud.stop()
        names = {n.name for n in docker_client().networks.list()}
        assert f"dockyard-net-{net['id']}" in names
        assert f"dockyard-net-{private[0]['id']}" not in names
        stopped.remove(force=True)
    finally:
        cloud.stop()
        if proxy is not None:
            proxy.shutdown()
            proxy.server_close()
        cloud.cleanup()

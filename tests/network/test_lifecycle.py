"""Concurrency, teardown and crash recovery (in the box)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from sdcontainer.errors import Conflict, NotFound
from sdcontainer.network import Attachment, AttachRequest, NetworkManager, PortMapping
from sdcontainer.network.firewall import nft

from .conftest import Env, new_id

pytestmark = pytest.mark.netbox


def _links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                          check=True).stdout


def test_fifty_parallel_attaches_in_threads(env: Env) -> None:
    results: list[Attachment] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            results.append(env.mgr.attach(AttachRequest(new_id(), f"c{i}", f"c{i}")))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ips = [a.ip for a in results]
    assert len(set(ips)) == 50
    # Each address is really configured in its own namespace, once.
    for a in results[:5]:
        out = subprocess.run(["nsenter", f"--net={a.netns_path}", "ip", "-o", "-4", "addr"],
                             capture_output=True, text=True, check=True).stdout
        assert f"{a.ip}/" in out
    for a in results:
        env.mgr.detach(a.container_id)
    assert env.mgr.members("bridge") == []
    assert "sdcv" not in _links()


WORKER = textwrap.dedent("""
    import json, secrets, sys
    from pathlib import Path
    from sdcontainer.network import AttachRequest, NetworkConfig, NetworkManager, PortMapping
    state, run, config, count, port = sys.argv[1:6]
    mgr = NetworkManager(Path(state), Path(run), NetworkConfig(**json.loads(config)))
    for i in range(int(count)):
        publish = [PortMapping("", int(port) + i, 80)] if int(port) else []
        a = mgr.attach(AttachRequest(secrets.token_hex(32), f"p{i}", f"p{i}", publish=publish))
        print(json.dumps([a.container_id, a.ip]), flush=True)
    print("ready", flush=True)
    sys.stdin.read()   # wait to be killed
""")


def _spawn(env: Env, count: int, port: int = 0) -> subprocess.Popen[str]:
    cfg = {"subnet": env.config.subnet, "bridge": env.config.bridge,
           "user_subnets": env.config.user_subnets, "resolv_conf": env.config.resolv_conf}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(env.state), str(env.run), json.dumps(cfg),
         str(count), str(port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2])


def _collect(proc: subprocess.Popen[str]) -> list[tuple[str, str]]:
    assert proc.stdout is not None
    got = []
    for line in proc.stdout:
        if line.strip() == "ready":
            return got
        cid, ip = json.loads(line)
        got.append((cid, ip))
    raise AssertionError(f"worker died with {proc.wait()}")


def test_fifty_parallel_attaches_in_processes(env: Env) -> None:
    procs = [_spawn(env, 10) for _ in range(5)]
    try:
        got = [pair for p in procs for pair in _collect(p)]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert len(got) == 50
    assert len({ip for _, ip in got}) == 50
    assert len(env.mgr.members("bridge")) == 50


def test_reconcile_after_kill(env: Env) -> None:
    env.mgr.create_network("crashnet")
    survivor = env.mgr.attach(AttachRequest(new_id(), "keep", "keep", networks=["crashnet"]))
    proc = _spawn(env, 3, port=18500)
    dead = [cid for cid, _ in _collect(proc)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ruleset = nft(None, "list", "ruleset")
    assert all(cid in ruleset for cid in dead)
    assert all(f"sdcv{cid[:8]}" in _links() for cid in dead)

    fresh = NetworkManager(env.state, env.run, env.config)
    removed = fresh.reconcile({survivor.container_id})
    assert sorted(removed) == sorted(dead)
    ruleset = nft(None, "list", "ruleset")
    links = _links()
    for cid in dead:
        assert cid not in ruleset
        assert f"sdcv{cid[:8]}" not in links
        assert not (env.run / "netns" / cid).exists()
        assert not (env.run / "containers" / cid).exists()
    state = "".join(p.read_text() for p in (env.state / "networks").rglob("*.json"))
    assert not any(cid in state for cid in dead)
    # The survivor is untouched, and its published-port-free setup still works.
    assert f"sdcv{survivor.container_id[:8]}" in links
    assert [m.container_id for m in fresh.members("crashnet")] == [survivor.container_id]
    # The dead containers' host ports are free again (nobody holds them).
    again = fresh.attach(AttachRequest(new_id(), "again", "again",
                                       publish=[PortMapping("", 18500, 80)]))
    assert again.ports[0].host_port == 18500
    fresh.close()


def test_reconcile_removes_orphans_without_records(env: Env) -> None:
    a = env.mgr.attach(AttachRequest(new_id(), "a", "a", publish=[PortMapping("", 18600, 80)]))
    # Lose the record, as a crash between kernel work and bookkeeping might.
    (env.state / "networks" / "endpoints" / f"{a.container_id}.json").unlink()
    env.mgr.reconcile(set())
    assert f"sdcv{a.container_id[:8]}" not in _links()
    assert a.container_id not in nft(None, "list", "ruleset")
    assert not (env.run / "netns" / a.container_id).exists()
    assert env.mgr.members("bridge") == []


def test_detach_is_idempotent(env: Env) -> None:
    cid = new_id()
    env.mgr.detach(cid)  # never attached
    a = env.mgr.attach(AttachRequest(cid, "a", "a", publish=[PortMapping("", 18700, 80)]))
    # Half torn down already: the veth and the namespace are gone.
    subprocess.run(["ip", "link", "del", a.interfaces[0].host_ifname], check=True)
    subprocess.run(["umount", a.netns_path or ""], check=True)
    env.mgr.detach(cid)
    env.mgr.detach(cid)
    assert env.mgr.attachment(cid) is None
    assert cid not in nft(None, "list", "ruleset")
    env.mgr.attach(AttachRequest(cid, "a", "a"))
    with pytest.raises(Conflict, match="already attached"):
        env.mgr.attach(AttachRequest(cid, "a", "a"))


def test_networks_remove_and_prune(env: Env) -> None:
    net = env.mgr.create_network("busy", labels={"team": "x"})
    env.mgr.create_network("idle")
    assert env.mgr.inspect("busy") == net
    assert env.mgr.inspect(net.id[:12]) == net
    a = env.mgr.attach(AttachRequest(new_id(), "a", "a", networks=["busy"]))
    assert net.bridge in _links()
    with pytest.raises(Conflict):
        env.mgr.remove_network("busy")
    with pytest.raises(Conflict):
        env.mgr.remove_network("bridge")
    assert env.mgr.prune() == ["idle"]
    env.mgr.detach(a.container_id)
    env.mgr.remove_network("busy")
    assert net.bridge not in _links()
    assert net.subnet.split("/")[0] not in nft(None, "list", "table", "inet", "sdcontainer")
    with pytest.raises(NotFound):
        env.mgr.inspect("busy")
    assert [n.name for n in env.mgr.list_networks()] == ["bridge"]

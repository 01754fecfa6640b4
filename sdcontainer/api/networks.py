"""Docker Engine API: the /networks endpoints, over the network manager."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..engine.core import Engine
from ..errors import Conflict, InvalidArgument, Unsupported
from ..network import NetworkRecord
from .http import Request, Response, Router, json_response
from .wire import get, get_obj, get_str_list, get_str_map


class NetworkAPI:
    """Handlers bound to an engine with networking."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def manager(self) -> Any:
        """The network manager, or a clear error where there is none."""
        if self.engine.network is None:
            raise Unsupported("networking is not available on this host")
        return self.engine.network.manager

    def register(self, r: Router) -> None:
        """Add our routes to R."""
        r.add("GET", "/networks", self.list)
        r.add("POST", "/networks/create", self.create)
        r.add("POST", "/networks/prune", self.prune)
        r.add("GET", "/networks/{id}", self.inspect)
        r.add("DELETE", "/networks/{id}", self.remove)
        r.add("POST", "/networks/{id}/connect", self.connect)
        r.add("POST", "/networks/{id}/disconnect", self.disconnect)

    def describe(self, net: NetworkRecord) -> dict[str, Any]:
        """docker's network shape, with its running members."""
        members = {}
        for m in self.manager.members(net.name):
            members[m.container_id] = {"Name": m.name, "IPv4Address": f"{m.ip}/"
                                       f"{net.subnet.split('/')[1]}", "MacAddress": "",
                                       "EndpointID": "", "IPv6Address": ""}
        return {
            "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local",
            "Driver": net.driver, "EnableIPv6": False, "Internal": net.internal,
            "Attachable": False, "Ingress": False,
            "IPAM": {"Driver": "default", "Options": {},
                     "Config": [{"Subnet": net.subnet, "Gateway": net.gateway}]},
            "Options": {"com.docker.network.bridge.name": net.bridge},
            "Labels": net.labels, "Containers": members,
        }

    async def list(self, req: Request) -> Response:
        nets = await asyncio.to_thread(self.manager.list_networks)
        filters = json.loads(req.arg("filters") or "{}")
        names = filters.get("name") if isinstance(filters, dict) else None
        result = [await asyncio.to_thread(self.describe, n) for n in nets
                  if not names or any(x in n.name for x in names)]
        return json_response(result)

    async def inspect(self, req: Request) -> Response:
        net = await asyncio.to_thread(self.manager.inspect, req.params["id"])
        return json_response(await asyncio.to_thread(self.describe, net))

    async def create(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object")
        name = get(body, "Name", str, "")
        if not name:
            raise InvalidArgument("network name is required")
        driver = get(body, "Driver", str, "bridge") or "bridge"
        if driver != "bridge":
            raise InvalidArgument(f"network driver {driver!r} is not supported (bridge is)")
        configs = get(get_obj(body, "IPAM"), "Config", list, [], "IPAM.")
        subnet = gateway = None
        if configs:
            if not isinstance(configs[0], dict):
                raise InvalidArgument("IPAM.Config entries must be objects")
            subnet = configs[0].get("Subnet") or None
            gateway = configs[0].get("Gateway") or None
        if name in {n.name for n in await asyncio.to_thread(self.manager.list_networks)}:
            raise Conflict(f"network with name {name} already exists")
        net = await asyncio.to_thread(
            self.manager.create_network, name, subnet, gateway,
            get(body, "Internal", bool, False), get_str_map(body, "Labels"))
        return json_response({"Id": net.id, "Warning": ""}, 201)

    async def remove(self, req: Request) -> Response:
        await asyncio.to_thread(self.manager.remove_network, req.params["id"])
        return Response(204)

    async def prune(self, req: Request) -> Response:
        gone = await asyncio.to_thread(self.manager.prune)
        return json_response({"NetworksDeleted": gone})

    async def connect(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object")
        c = self.engine.get(get(body, "Container", str, ""))
        net = await asyncio.to_thread(self.manager.inspect, req.params["id"])
        aliases = get_str_list(get_obj(body, "EndpointConfig"), "Aliases") or []
        if not c.running and net.name == c.config.network_mode:
            # A created container joins its own network at start; docker-compose connects
            # it (with the service name as alias) before starting it.
            c.config.aliases = sorted(set(c.config.aliases) | set(aliases))
            await self.engine.save(c)
            return Response(200)
        if not c.running:
            raise Conflict(f"container {c.name} is not running: connect it while it runs, "
                           "or create it with --network")
        att = await asyncio.to_thread(self.manager.connect, c.id, net.name, aliases)
        c.network = att.to_json()
        await self.engine.save(c)
        return Response(200)

    async def disconnect(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object")
        c = self.engine.get(get(body, "Container", str, ""))
        if not c.running:
            raise Conflict(f"container {c.name} is not running")
        net = await asyncio.to_thread(self.manager.inspect, req.params["id"])
        att = await asyncio.to_thread(self.manager.disconnect, c.id, net.name)
        c.network = att.to_json()
        await self.engine.save(c)
        return Response(200)

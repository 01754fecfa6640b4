"""Docker Engine API: the /networks endpoints, over the network manager."""

from __future__ import annotations

import asyncio
from typing import Any

from ..engine.core import Engine
from ..errors import Conflict, InvalidArgument, Unsupported
from ..network import DEFAULT_NETWORK, NetworkRecord
from . import filters as api_filters
from .http import Request, Response, Router, json_response
from .wire import get, get_obj, get_str_list, get_str_map

NETWORK_FILTERS = ("name", "id", "label", "driver", "type", "scope", "dangling")


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
        ipam: dict[str, Any] = {"Subnet": net.subnet, "Gateway": net.gateway}
        if net.ip_range:
            ipam["IPRange"] = net.ip_range
        if net.aux_addresses:
            ipam["AuxiliaryAddresses"] = net.aux_addresses
        return {
            "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local",
            "Driver": net.driver, "EnableIPv6": False, "Internal": net.internal,
            "Attachable": net.attachable, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "IPAM": {"Driver": "default", "Options": net.ipam_options or None,
                     "Config": [ipam]},
            # Only the options given at create: docker-compose compares them with its
            # file, and one nobody set would read as "changed".
            "Options": net.options, "Labels": net.labels, "Containers": members,
        }

    async def list(self, req: Request) -> Response:
        nets = await asyncio.to_thread(self.manager.list_networks)
        f = api_filters.parse(req.arg("filters"), NETWORK_FILTERS)
        names, ids = f.get("name", []), f.get("id", [])
        kinds = f.get("type", [])

        def keep(n: NetworkRecord) -> bool:
            if names and not any(x in n.name for x in names):
                return False
            if ids and not any(n.id.startswith(x) for x in ids):
                return False
            if f.get("driver") and n.driver not in f["driver"]:
                return False
            if kinds and ("custom" if n.user_defined else "builtin") not in kinds:
                return False
            return api_filters.labels_match(n.labels, f.get("label", []))

        result = [await asyncio.to_thread(self.describe, n) for n in nets if keep(n)]
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
        ipam = get_obj(body, "IPAM")
        configs = get(ipam, "Config", list, [], "IPAM.")
        subnet = gateway = None
        ip_range = ""
        aux: dict[str, str] = {}
        if configs:
            if not isinstance(configs[0], dict):
                raise InvalidArgument("IPAM.Config entries must be objects")
            subnet = configs[0].get("Subnet") or None
            gateway = configs[0].get("Gateway") or None
            ip_range = str(configs[0].get("IPRange") or "")
            aux = get_str_map(configs[0], "AuxiliaryAddresses")
        details = NetworkRecord(name="", id="", bridge="", subnet="", gateway="",
                                options=get_str_map(body, "Options"),
                                ipam_options=get_str_map(ipam, "Options"), ip_range=ip_range,
                                aux_addresses=aux, attachable=get(body, "Attachable", bool, False))
        if name in {n.name for n in await asyncio.to_thread(self.manager.list_networks)}:
            raise Conflict(f"network with name {name} already exists")
        net = await asyncio.to_thread(
            self.manager.create_network, name, subnet, gateway,
            get(body, "Internal", bool, False), get_str_map(body, "Labels"), details)
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
        if not c.running and c.config.network_mode in (net.name, "none", "", "default",
                                                       DEFAULT_NETWORK):
            # A created container joins its own network at start; docker-compose connects
            # it (with the service name as alias) before starting it.  A stopped one on
            # the default network moves to NET (one network per start; docker would add
            # NET beside it).
            c.config.network_mode = net.name
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
        net = await asyncio.to_thread(self.manager.inspect, req.params["id"])
        if not c.running and net.name == c.config.network_mode:
            # Inspect lists a created container's network; docker-compose disconnects it
            # and connects it again (with its aliases) before starting it.
            c.config.network_mode, c.config.aliases = "none", []
            await self.engine.save(c)
            return Response(200)
        if not c.running:
            raise Conflict(f"container {c.name} is not running")
        att = await asyncio.to_thread(self.manager.disconnect, c.id, net.name)
        c.network = att.to_json()
        await self.engine.save(c)
        return Response(200)

"""Docker Engine API: the /networks endpoints, over the network manager."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..engine import networking
from ..engine.core import Engine
from ..errors import Conflict, InvalidArgument, NotFound, PermissionDenied, Unsupported
from ..network import DEFAULT_NETWORK, NetworkRecord, predefined
from . import filters as api_filters
from . import netjson
from .http import Request, Response, Router, json_response
from .wire import get, get_obj, get_str_map

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

    def predefined(self) -> list[NetworkRecord]:
        """`host` and `none`, dated as the default bridge."""
        return predefined.records(self.manager.inspect(DEFAULT_NETWORK).created)

    def refuse_predefined(self, ref: str, what: str) -> None:
        """dockerd's refusal to remove, connect or disconnect `host` and `none`."""
        name = predefined.find(ref)
        if name is not None:
            raise PermissionDenied(f"{name} is a pre-defined network and cannot be {what}; a "
                            f"container joins it when it is created (--network {name})")

    def describe_predefined(self, net: NetworkRecord) -> dict[str, Any]:
        """`host` or `none` as dockerd shows it: no IPAM, its running containers."""
        members = {
            c.id: {"Name": c.name, "EndpointID": "", "MacAddress": "", "IPv4Address": "",
                   "IPv6Address": ""}
            for c in self.engine.containers.values()
            if c.running and (c.config.network_mode or "bridge") == net.name}
        return {
            "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local",
            "Driver": net.driver, "EnableIPv6": False, "Internal": False,
            "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False, "IPAM": {"Driver": "default", "Options": None, "Config": []},
            "Options": {}, "Labels": {}, "Containers": members}

    def describe(self, net: NetworkRecord) -> dict[str, Any]:
        """docker's network shape, with its running members."""
        if net.driver in predefined.DRIVERS.values():
            return self.describe_predefined(net)
        members = {}
        for m in self.manager.members(net.name):
            members[m.container_id] = {
                "Name": m.name, "IPv4Address": f"{m.ip}/{net.subnet.split('/')[1]}",
                "MacAddress": m.mac, "EndpointID": m.endpoint_id,
                "IPv6Address": f"{m.ip6}/{net.subnet6.split('/')[1]}" if m.ip6 else ""}
        ipam: dict[str, Any] = {"Subnet": net.subnet, "Gateway": net.gateway}
        if net.ip_range:
            ipam["IPRange"] = net.ip_range
        v4_aux = {k: a for k, a in net.aux_addresses.items() if ":" not in a}
        if v4_aux:
            ipam["AuxiliaryAddresses"] = v4_aux
        configs = [ipam]
        if net.subnet6:
            ipam6: dict[str, Any] = {"Subnet": net.subnet6, "Gateway": net.gateway6}
            if net.ip_range6:
                ipam6["IPRange"] = net.ip_range6
            v6_aux = {k: a for k, a in net.aux_addresses.items() if ":" in a}
            if v6_aux:
                ipam6["AuxiliaryAddresses"] = v6_aux
            configs.append(ipam6)
        return {
            "Name": net.name, "Id": net.id, "Created": net.created, "Scope": "local",
            "Driver": net.driver, "EnableIPv6": bool(net.subnet6), "Internal": net.internal,
            "Attachable": net.attachable, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "IPAM": {"Driver": "default", "Options": net.ipam_options or None,
                     "Config": configs},
            # Only the options given at create: docker-compose compares them with its
            # file, and one nobody set would read as "changed".
            "Options": net.options, "Labels": net.labels, "Containers": members,
        }

    async def list(self, req: Request) -> Response:
        nets = await asyncio.to_thread(self.manager.list_networks)
        nets += await asyncio.to_thread(self.predefined)
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
            builtin = not n.user_defined or n.driver in predefined.DRIVERS.values()
            if kinds and ("builtin" if builtin else "custom") not in kinds:
                return False
            return api_filters.labels_match(n.labels, f.get("label", []))

        result = [await asyncio.to_thread(self.describe, n) for n in nets if keep(n)]
        return json_response(result)

    async def inspect(self, req: Request) -> Response:
        name = predefined.find(req.params["id"])
        if name is not None:
            net = next(n for n in await asyncio.to_thread(self.predefined) if n.name == name)
            return json_response(self.describe_predefined(net))
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
        if not all(isinstance(c, dict) for c in configs):
            raise InvalidArgument("IPAM.Config entries must be objects")
        v4 = [c for c in configs if ":" not in str(c.get("Subnet") or "")]
        v6 = [c for c in configs if ":" in str(c.get("Subnet") or "")]
        if len(v4) > 1 or len(v6) > 1:
            raise InvalidArgument("IPAM.Config: at most one IPv4 and one IPv6 subnet")
        enable_ipv6 = get(body, "EnableIPv6", bool, False)
        if enable_ipv6 and not v6:
            raise InvalidArgument("EnableIPv6 needs an IPv6 subnet in IPAM.Config "
                                  "(sdcontainer has no IPv6 pool to pick one from)")
        if v6 and not enable_ipv6:
            raise InvalidArgument(f"IPv6 subnet {v6[0]['Subnet']} given without EnableIPv6")
        first = v4[0] if v4 else {}
        six = v6[0] if v6 else {}
        subnet = first.get("Subnet") or None
        gateway = first.get("Gateway") or None
        aux = {**get_str_map(first, "AuxiliaryAddresses"), **get_str_map(six,
                                                                          "AuxiliaryAddresses")}
        details = NetworkRecord(name="", id="", bridge="", subnet="", gateway="",
                                options=get_str_map(body, "Options"),
                                ipam_options=get_str_map(ipam, "Options"),
                                ip_range=str(first.get("IPRange") or ""),
                                aux_addresses=aux, attachable=get(body, "Attachable", bool, False),
                                subnet6=str(six.get("Subnet") or ""),
                                gateway6=str(six.get("Gateway") or ""),
                                ip_range6=str(six.get("IPRange") or ""))
        if name in {n.name for n in await asyncio.to_thread(self.manager.list_networks)}:
            raise Conflict(f"network with name {name} already exists")
        net = await asyncio.to_thread(
            self.manager.create_network, name, subnet, gateway,
            get(body, "Internal", bool, False), get_str_map(body, "Labels"), details)
        return json_response({"Id": net.id, "Warning": ""}, 201)

    async def remove(self, req: Request) -> Response:
        self.refuse_predefined(req.params["id"], "removed")
        await asyncio.to_thread(self.manager.remove_network, req.params["id"])
        return Response(204)

    async def prune(self, req: Request) -> Response:
        gone = await asyncio.to_thread(self.manager.prune)
        return json_response({"NetworksDeleted": gone})

    async def connect(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object")
        self.refuse_predefined(req.params["id"], "connected to")
        c = self.engine.get(get(body, "Container", str, ""))
        net = await asyncio.to_thread(self.manager.inspect, req.params["id"])
        spec = netjson.parse_endpoint(net.name, get_obj(body, "EndpointConfig"),
                                      "EndpointConfig.")
        networking.settings_of(spec).validate(net.name)
        async with self.engine.lock(c):
            self.engine.still_here(c)
            if c.running:
                att = await asyncio.to_thread(self.manager.connect, c.id, net.name, None,
                                              networking.settings_of(spec))
                c.network = att.to_json()
            # Recorded as well: the container joins NET again at its next start.  A
            # stopped one (created or exited) joins it then, as docker does.
            networking.record_connect(c.config, net, spec)
            await self.engine.save(c)
        return Response(200)

    async def disconnect(self, req: Request) -> Response:
        body = req.json()
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object")
        self.refuse_predefined(req.params["id"], "disconnected from")
        c = self.engine.get(get(body, "Container", str, ""))
        net = await asyncio.to_thread(self.manager.inspect, req.params["id"])
        async with self.engine.lock(c):
            self.engine.still_here(c)
            if c.running:
                att = await asyncio.to_thread(self.manager.disconnect, c.id, net.name)
                c.network = att.to_json()
                with contextlib.suppress(NotFound):  # a network connected before it was kept
                    networking.record_disconnect(c.config, net)
            else:
                networking.record_disconnect(c.config, net)
            await self.engine.save(c)
        return Response(200)

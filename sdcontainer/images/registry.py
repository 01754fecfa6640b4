"""A Docker Registry HTTP API v2 / OCI distribution client on the stdlib.

Security rules this module keeps:

* Credentials go only to the registry's own host: never along a redirect to
  another host, and never to a token realm on another host (CVE-2020-15157),
  except Docker Hub's known realm ``auth.docker.io``.
* Plain HTTP only for registries configured insecure; a redirect may not
  downgrade https to http.
* Every read is capped (descriptor size + 1, or a fixed limit for manifests
  fetched by tag) and every blob verified while it streams.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from sdcontainer.errors import ManifestUnknown, RegistryError
from sdcontainer.images import mediatypes as mt
from sdcontainer.images.config import RegistriesConfig
from sdcontainer.images.reference import DOCKER_HUB

logger = logging.getLogger(__name__)

USER_AGENT = "sdcontainer/0.1"
_MANIFEST_ACCEPT = ", ".join((mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_LIST, mt.DOCKER_MANIFEST))
_REDIRECTS = (301, 302, 303, 307, 308)
_MAX_REDIRECTS = 5
_MAX_TOKEN = 1 << 20
# Docker Hub serves the API on one host and tokens on another; both are Docker's.
_HUB_API = "registry-1.docker.io"
_HUB_REALM_HOSTS = {"auth.docker.io"}


def api_host(registry: str) -> str:
    """The host:port serving the API for REGISTRY (docker.io is special)."""
    return _HUB_API if registry in (DOCKER_HUB, "index.docker.io") else registry


class Response:
    """An open HTTP response; read it in chunks, then close it."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
                 url: str) -> None:
        self._conn = conn
        self._resp = resp
        self.url = url
        self.status = resp.status
        self.headers = resp.headers

    def read(self, n: int = -1) -> bytes:
        """Up to N bytes of the body."""
        try:
            return self._resp.read(n)
        except (OSError, http.client.HTTPException) as e:
            raise RegistryError(f"{self.url}: connection lost: {e}") from None

    def read_capped(self, limit: int, what: str) -> bytes:
        """The whole body, refusing more than LIMIT bytes."""
        data = self.read(limit + 1)
        if len(data) > limit:
            raise RegistryError(f"{what}: response larger than {limit} bytes")
        return data

    def close(self) -> None:
        """Release the connection."""
        self._conn.close()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split ``Bearer realm="...",service="..."`` into scheme and parameters."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


def _error_text(body: bytes) -> str:
    try:
        doc = json.loads(body)
        errs = doc.get("errors") or []
        if errs and isinstance(errs[0], dict):
            return " ".join(str(errs[0].get(k, "")) for k in ("code", "message")).strip()
    except (ValueError, AttributeError):
        pass
    return body[:200].decode(errors="replace").strip().replace("\n", " ")


Body = bytes | Callable[[], BinaryIO] | None


@dataclass
class _Auth:
    scheme: str = ""  # "", "basic" or "bearer"
    token: str = ""


class RegistryClient:
    """Talks to one registry, for one repository at a time."""

    def __init__(
        self,
        registry: str,
        *,
        config: RegistriesConfig,
        credentials: tuple[str, str] | None = None,
        timeout: float = 60.0,
        retries: int = 3,
    ) -> None:
        self.registry = registry
        self.host = api_host(registry)
        self.insecure = config.is_insecure(registry) or config.is_insecure(self.host)
        self._config = config
        self._credentials = credentials
        self._timeout = timeout
        self._retries = retries
        self._scheme: str | None = None
        self._auth: dict[str, _Auth] = {}

    # -- transport -----------------------------------------------------------

    def _connect(self, url: str) -> tuple[http.client.HTTPConnection, str]:
        u = urllib.parse.urlsplit(url)
        host = u.hostname or ""
        path = (u.path or "/") + (f"?{u.query}" if u.query else "")
        if u.scheme == "https":
            ctx = ssl.create_default_context()
            if self._config.is_insecure(u.netloc):
                # Insecure registries may use self-signed certificates too.
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(host, u.port, timeout=self._timeout,
                                               context=ctx), path
        if u.scheme == "http":
            if not self._config.is_insecure(u.netloc):
                raise RegistryError(f"refusing plain HTTP to {u.netloc}: not configured insecure")
            return http.client.HTTPConnection(host, u.port, timeout=self._timeout), path
        raise RegistryError(f"unsupported URL scheme in {url}")

    def _send(self, method: str, url: str, headers: dict[str, str],
              body: Body = None) -> Response:
        """One request, following redirects without leaking credentials.  BODY (bytes, or
        a callable opening a fresh file each time) goes with uploads."""
        origin = urllib.parse.urlsplit(url)
        for _ in range(_MAX_REDIRECTS + 1):
            conn, path = self._connect(url)
            data = body() if callable(body) else body
            try:
                conn.request(method, path, body=data,
                             headers={"User-Agent": USER_AGENT, **headers})
                resp = conn.getresponse()
            except BaseException:
                conn.close()
                raise
            finally:
                if data is not None and not isinstance(data, bytes):
                    data.close()
            if resp.status not in _REDIRECTS:
                return Response(conn, resp, url)
            location = resp.headers.get("Location", "")
            conn.close()
            if not location:
                raise RegistryError(f"{url}: redirect without a Location")
            new = urllib.parse.urljoin(url, location)
            target = urllib.parse.urlsplit(new)
            if urllib.parse.urlsplit(url).scheme == "https" and target.scheme != "https":
                raise RegistryError(f"{url}: refusing a redirect from https to {target.scheme}")
            if (target.scheme, target.netloc) != (origin.scheme, origin.netloc):
                # Blob storage elsewhere (S3, a CDN) gets no registry credentials.
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            url = new
        raise RegistryError(f"{url}: too many redirects")

    def _base(self) -> str:
        if self._scheme is None:
            self._scheme = self._probe_scheme()
        return f"{self._scheme}://{self.host}"

    def _probe_scheme(self) -> str:
        """https, or http for an insecure registry that does not speak TLS."""
        if not self.insecure:
            return "https"
        try:
            with self._send("GET", f"https://{self.host}/v2/", {}):
                return "https"
        except (ssl.SSLError, ConnectionError, OSError, http.client.HTTPException):
            return "http"

    # -- auth ----------------------------------------------------------------

    def _authorization(self, scope: str) -> dict[str, str]:
        auth = self._auth.get(scope)
        if auth is None or not auth.scheme:
            return {}
        if auth.scheme == "basic" and self._credentials:
            raw = f"{self._credentials[0]}:{self._credentials[1]}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if auth.scheme == "bearer" and auth.token:
            return {"Authorization": f"Bearer {auth.token}"}
        return {}

    def _may_send_credentials_to(self, netloc: str) -> bool:
        host = urllib.parse.urlsplit(f"//{netloc}").hostname or ""
        own = urllib.parse.urlsplit(f"//{self.host}").hostname or ""
        if netloc == self.host or host == own:
            return True
        return self.host == _HUB_API and host in _HUB_REALM_HOSTS

    def _authenticate(self, challenge: str, scope: str) -> None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if not self._credentials:
                raise RegistryError(f"{self.registry}: authentication required (run login)")
            self._auth[scope] = _Auth("basic")
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"{self.registry}: unsupported authentication {challenge!r}")
        realm = urllib.parse.urlsplit(params["realm"])
        if realm.scheme not in ("https", "http"):
            raise RegistryError(f"{self.registry}: bad token realm {params['realm']!r}")
        query = {"service": params.get("service", "")}
        if params.get("scope") or scope:
            query["scope"] = params.get("scope") or scope
        url = params["realm"] + ("&" if realm.query else "?") + urllib.parse.urlencode(query)
        headers: dict[str, str] = {}
        if self._credentials:
            if not self._may_send_credentials_to(realm.netloc):
                raise RegistryError(
                    f"{self.registry}: token realm {realm.netloc} is another host; "
                    "not sending credentials there"
                )
            raw = f"{self._credentials[0]}:{self._credentials[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        with self._retrying("GET", url, headers) as resp:
            body = resp.read_capped(_MAX_TOKEN, "token")
            if resp.status != 200:
                raise RegistryError(
                    f"{self.registry}: token request failed: {resp.status} {_error_text(body)}"
                )
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{self.registry}: token endpoint returned no token")
        self._auth[scope] = _Auth("bearer", token)

    def _retrying(self, method: str, url: str, headers: dict[str, str],
                  body: Body = None) -> Response:
        delay = 0.5
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                resp = self._send(method, url, headers, body)
            except RegistryError:
                raise
            except ssl.SSLError as e:
                # Not transient: the other side does not speak TLS as we expect.
                raise RegistryError(f"{method} {url}: TLS failed: {e}") from None
            except (OSError, http.client.HTTPException) as e:
                if last:
                    raise RegistryError(f"{method} {url}: {e}") from None
                logger.info("%s %s failed (%s), retrying", method, url, e)
            else:
                if resp.status in (429, 500, 502, 503, 504) and not last:
                    resp.close()
                    logger.info("%s %s: %s, retrying", method, url, resp.status)
                else:
                    return resp
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def request(self, method: str, path: str, scope: str,
                headers: dict[str, str] | None = None, body: Body = None) -> Response:
        """Send METHOD /v2/PATH (or an absolute URL of this registry) with auth for
        SCOPE; the caller checks the status."""
        url = path if path.startswith(("https://", "http://")) else self._base() + path
        for _ in range(2):
            resp = self._retrying(method, url, {**(headers or {}), **self._authorization(scope)},
                                  body)
            if resp.status != 401:
                return resp
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.close()
            if scope in self._auth and self._auth[scope].scheme:
                break
            if not challenge:
                break
            self._authenticate(challenge, scope)
        raise RegistryError(
            f"{self.registry}: access denied to {path}"
            + ("" if self._credentials else " (not logged in)")
        )

    # -- the API -------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/, authenticating if asked; raises RegistryError on failure."""
        with self.request("GET", "/v2/", "") as resp:
            body = resp.read_capped(1 << 16, "/v2/")
            if resp.status != 200:
                raise RegistryError(f"{self.registry}: /v2/: {resp.status} {_error_text(body)}")

    def get_manifest(self, repo: str, reference: str,
                     size: int | None = None) -> tuple[bytes, str]:
        """Fetch a manifest or index by tag or digest; returns (body, content type).

        The body is capped at SIZE + 1 (if known) or 4 MiB; the caller checks
        its digest.
        """
        scope = f"repository:{repo}:pull"
        with self.request("GET", f"/v2/{repo}/manifests/{reference}", scope,
                          {"Accept": _MANIFEST_ACCEPT}) as resp:
            limit = size if size is not None else mt.MAX_MANIFEST
            body = resp.read_capped(limit, f"manifest {repo}:{reference}")
            if resp.status != 200:
                raise (ManifestUnknown if resp.status == 404 else RegistryError)(
                    f"{self.registry}/{repo}: manifest {reference}: {resp.status} "
                    f"{_error_text(body)}"
                )
            return body, resp.headers.get("Content-Type", "")

    def open_blob(self, repo: str, digest: str) -> Response:
        """An open response streaming blob DIGEST (the caller verifies it)."""
        scope = f"repository:{repo}:pull"
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope)
        if resp.status != 200:
            body = resp.read(2048)
            resp.close()
            raise RegistryError(
                f"{self.registry}/{repo}: blob {digest}: {resp.status} {_error_text(body)}"
            )
        return resp


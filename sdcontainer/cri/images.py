"""CRI's ImageService (runtime.v1) over the engine's image store: the same images
`sdcontainer images` lists, pulled by the same code as the Docker API's pulls."""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Any

from .. import paths
from ..engine.core import Engine
from ..errors import Conflict, InvalidArgument, NotFound
from ..images.model import Image
from ..images.pull import pull
from ..util.fileio import du
from .gen import api_pb2 as pb
from .gen import api_pb2_grpc
from .status import fill_unimplemented, rpc


class ImageService(api_pb2_grpc.ImageServiceServicer):  # type: ignore[misc]
    """runtime.v1.ImageService."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.images

    async def _find(self, ref: str) -> Image | None:
        if not ref:
            raise InvalidArgument("no image given")
        try:
            img: Image = await asyncio.to_thread(self.store.resolve, ref)
        except NotFound:
            return None
        return img

    @rpc
    async def ListImages(self, request: Any, context: Any) -> Any:
        images: list[Image] = await asyncio.to_thread(self.store.list)
        want = request.filter.image.image if request.HasField("filter") else ""
        if want:
            found = await self._find(want)
            images = [i for i in images if found is not None and i.id == found.id]
        return pb.ListImagesResponse(images=[image_proto(i) for i in images])

    @rpc
    async def ImageStatus(self, request: Any, context: Any) -> Any:
        # An image we do not have is an empty answer, not an error (kubelet then pulls).
        img = await self._find(request.image.image)
        return pb.ImageStatusResponse(image=image_proto(img) if img is not None else None)

    @rpc
    async def PullImage(self, request: Any, context: Any) -> Any:
        ref = request.image.image
        if not ref:
            raise InvalidArgument("no image given")
        creds = credentials(request.auth) if request.HasField("auth") else None
        img: Image = await asyncio.to_thread(pull, self.store, ref, credentials=creds)
        return pb.PullImageResponse(image_ref=img.id)

    @rpc
    async def RemoveImage(self, request: Any, context: Any) -> Any:
        img = await self._find(request.image.image)
        if img is None:
            return pb.RemoveImageResponse()  # already gone is removed, as CRI asks
        users = [c.name for c in self.engine.containers.values()
                 if c.config.image_id == img.id]
        if users:
            raise Conflict(f"image {img.short_id} is used by container {users[0]}")
        # Every name of it goes: CRI removes images, not tags.
        await asyncio.to_thread(self.store.remove, img.id, force=True)
        return pb.RemoveImageResponse()

    @rpc
    async def ImageFsInfo(self, request: Any, context: Any) -> Any:
        now = time.time_ns()

        async def usage(path: str) -> Any:
            used = await asyncio.to_thread(du, path, blocks=True)
            return pb.FilesystemUsage(timestamp=now, fs_id=pb.FilesystemIdentifier(
                mountpoint=path), used_bytes=pb.UInt64Value(value=used))

        return pb.ImageFsInfoResponse(
            image_filesystems=[await usage(str(paths.IMAGES_DIR))],
            container_filesystems=[await usage(str(paths.CONTAINERS_DIR))])


fill_unimplemented(ImageService, api_pb2_grpc.ImageServiceServicer)


def image_proto(img: Image) -> Any:
    """CRI's Image of IMG; a numeric image user is its uid, any other its username."""
    user = img.config.user.split(":", 1)[0] if img.config.user else ""
    uid = pb.Int64Value(value=int(user)) if user.isdigit() else None
    return pb.Image(id=img.id, repo_tags=img.repo_tags, repo_digests=img.repo_digests,
                    size=img.size, uid=uid, username="" if user.isdigit() else user,
                    spec=pb.ImageSpec(image=img.id))


def credentials(auth: Any) -> tuple[str, str] | None:
    """Registry credentials from CRI's AuthConfig: username and password, docker's
    base64 "user:password" `auth`, or a token (sent as the Docker API sends an
    identity token: the password of user "<token>")."""
    if auth.username or auth.password:
        return auth.username, auth.password
    if auth.auth:
        try:
            user, sep, password = base64.b64decode(auth.auth, validate=True).decode().partition(
                ":")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidArgument("PullImage: auth is not base64 of user:password") from None
        if not sep:
            raise InvalidArgument("PullImage: auth is not base64 of user:password")
        return user, password
    token = auth.identity_token or auth.registry_token
    return ("<token>", token) if token else None

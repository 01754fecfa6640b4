"""Worked examples of each verb, for the EXAMPLES sections of the man pages.

A long command goes on continuation lines, each but the last ending in " \\".

Keyed by the top-level verb as main.VERB_MODULES names it (and the management
groups `container` and `system`).  Each example is a command line and what it
does; tests/unit/test_manpages.py checks that every verb has at least one and that
each one parses with the verb's own parser.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """One command line of a man page's EXAMPLES section, and what it does."""

    command: str
    says: str


E = Example

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "run": (
        E("sdcontainer run --rm busybox echo hello",
          "Run a command in a new container, print its output, remove the container."),
        E("sdcontainer run -d --name web -p 8080:80 -m 64m --pids-limit 50 \\\n"
          "    busybox httpd -f -p 80",
          "Run a web server in the background as scope sdcontainer-web.scope, with a memory "
          "and a task limit, published on the host's port 8080."),
        E("sdcontainer run -it --rm busybox sh",
          "An interactive shell; Ctrl-P Ctrl-Q detaches from it, leaving it running."),
        E("sdcontainer run -d --name db --network appnet -v dbdata:/var/lib/db \\\n"
          "    --restart on-failure busybox sleep 1d",
          "Join a user network, mount a named volume and restart the container on failure."),
    ),
    "create": (
        E("sdcontainer create --name web -p 8080:80 busybox httpd -f -p 80",
          "Create a container without starting it; `sdcontainer start web` starts it."),
    ),
    "start": (
        E("sdcontainer start web", "Start a created or stopped container."),
        E("sdcontainer start -ai shell",
          "Start a container and attach to its terminal and input."),
    ),
    "attach": (
        E("sdcontainer attach web",
          "Attach the terminal to a running container; Ctrl-P Ctrl-Q detaches."),
        E("sdcontainer attach --detach-keys ctrl-x web", "Detach with Ctrl-X instead."),
    ),
    "stop": (
        E("sdcontainer stop web",
          "Send the stop signal, then SIGKILL after the stop timeout (10 s unless set)."),
        E("sdcontainer stop -t 2 web db", "Stop two containers, killing them after 2 s."),
    ),
    "restart": (
        E("sdcontainer restart -t 5 web", "Stop the container (waiting 5 s) and start it again."),
    ),
    "kill": (
        E("sdcontainer kill -s HUP web", "Send SIGHUP to the container's main process."),
    ),
    "rm": (
        E("sdcontainer rm web", "Remove a stopped container."),
        E("sdcontainer rm -f web", "Stop (kill) and remove a running container."),
    ),
    "wait": (
        E("sdcontainer wait job", "Block until the container exits, then print its exit code."),
    ),
    "ps": (
        E("sdcontainer ps -a", "List all containers, stopped ones too."),
        E("sdcontainer ps --filter status=exited --format '{{.Names}}\\t{{.Status}}'",
          "Names and status of the exited containers, with a Go template."),
    ),
    "inspect": (
        E("sdcontainer inspect web", "Print the container's record as JSON."),
        E("sdcontainer inspect -f '{{.State.Pid}} {{.NetworkSettings.IPAddress}}' web",
          "Print two fields with a Go template."),
    ),
    "logs": (
        E("sdcontainer logs -f --tail 20 web",
          "Show the last 20 lines of the container's output from the journal, then follow."),
        E("sdcontainer logs --since 10m -t web", "The last ten minutes, with timestamps."),
    ),
    "exec": (
        E("sdcontainer exec web ps", "Run ps in the running container web."),
        E("sdcontainer exec -it -u root -w /tmp web sh",
          "An interactive shell as root in /tmp; Ctrl-P Ctrl-Q detaches."),
    ),
    "top": (
        E("sdcontainer top web", "List the container's processes."),
    ),
    "images": (
        E("sdcontainer images", "List images."),
        E("sdcontainer images --format '{{.Repository}}:{{.Tag}}'",
          "One reference per line, as the shell completion asks for them."),
    ),
    "pull": (
        E("sdcontainer pull docker.io/library/alpine:3.19",
          "Download an image from a registry (registries are configured in "
          "/etc/sdcontainer/sdcontainer.toml)."),
    ),
    "push": (
        E("sdcontainer push registry.example.com:5000/team/web:1.0",
          "Upload an image tagged for a registry (`sdcontainer tag web "
          "registry.example.com:5000/team/web:1.0`), with the credentials of "
          "`sdcontainer login registry.example.com:5000`, or those in docker's "
          "config.json."),
        E("sdcontainer push -a registry.example.com:5000/team/web",
          "Upload every local tag of the repository."),
    ),
    "import": (
        E("/usr/lib/sdcontainer/busybox-rootfs busybox.tar && "
          "sdcontainer import busybox.tar busybox",
          "Make a first image from the busybox rootfs tool the package ships."),
        E("sdcontainer import -c 'CMD [\"sh\"]' rootfs.tar mybase:1",
          "Import a rootfs tarball with a default command."),
    ),
    "load": (
        E("sdcontainer load -i app.tar",
          "Load images from a docker archive or OCI layout tarball."),
    ),
    "save": (
        E("sdcontainer save -o busybox.tar busybox",
          "Write an image to a tar archive that docker, podman and skopeo can read."),
    ),
    "tag": (
        E("sdcontainer tag busybox registry.lan:5000/busybox:1",
          "Give an image another name."),
    ),
    "rmi": (
        E("sdcontainer rmi busybox:1", "Remove an image reference (and the image if unused)."),
    ),
    "image": (
        E("sdcontainer image ls", "List images (as `sdcontainer images`)."),
        E("sdcontainer image prune -a -f", "Remove every image no container uses."),
        E("sdcontainer image inspect -f '{{.Config.Cmd}}' busybox",
          "An image's default command."),
    ),
    "login": (
        E("echo \"$TOKEN\" | sdcontainer login -u me --password-stdin registry.lan:5000",
          "Store credentials for a registry (in /var/lib/sdcontainer/auth.json)."),
    ),
    "logout": (
        E("sdcontainer logout registry.lan:5000", "Forget the credentials of a registry."),
    ),
    "port": (
        E("sdcontainer port web", "List the container's published ports."),
        E("sdcontainer port web 80/tcp", "The host address that port 80/tcp is published on."),
    ),
    "network": (
        E("sdcontainer network create --subnet 10.89.0.0/24 appnet",
          "Create a user network; its members resolve each other by name."),
        E("sdcontainer network connect --alias cache appnet web",
          "Connect a running container to a network, with an alias."),
        E("sdcontainer network ls --format '{{.Name}}'", "The networks' names."),
    ),
    "pause": (
        E("sdcontainer pause web",
          "Freeze the container's scope (systemctl freeze; unified cgroups only)."),
    ),
    "unpause": (
        E("sdcontainer unpause web", "Thaw a paused container."),
    ),
    "generate": (
        E("sdcontainer generate systemd --restart-policy always web \\\n"
          "    > /etc/systemd/system/web.service",
          "A systemd service that runs a container like web, for boot."),
    ),
    "healthcheck": (
        E("sdcontainer healthcheck run web",
          "Run the container's health check now; exits 0 when healthy."),
    ),
    "tls": (
        E("sdcontainer tls init --hostname host.example.org",
          "Create a CA and server and client certificates in /etc/sdcontainer/tls, for "
          "sdcontainerd --tlsverify on TCP."),
    ),
    "version": (
        E("sdcontainer version", "The client's and the daemon's versions."),
    ),
    "info": (
        E("sdcontainer info --format '{{.CgroupDriver}} {{.Containers}}'",
          "Two fields of the system-wide information."),
    ),
    "events": (
        E("sdcontainer events --since 1h --filter event=die",
          "Containers that exited in the last hour, then follow new events."),
    ),
    "stats": (
        E("sdcontainer stats --no-stream web", "One reading of a container's CPU, memory, "
          "network and block I/O, and task count."),
    ),
    "volume": (
        E("sdcontainer volume create data", "Create a named volume."),
        E("sdcontainer run --rm -v data:/data busybox touch /data/x",
          "Use it in a container."),
        E("sdcontainer volume ls -q", "The volumes' names."),
    ),
    "build": (
        E("sdcontainer build -t app:1 .",
          "Build an image from ./Dockerfile; each RUN step runs in a scope."),
        E("sdcontainer build --build-arg VERSION=2 -f Dockerfile.prod -t app:2 src",
          "Another Dockerfile, a build argument and a context directory."),
    ),
    "builder": (
        E("sdcontainer builder prune -f", "Remove the build cache no tagged image uses."),
    ),
    "buildx": (
        E("sdcontainer buildx prune -a -f", "Remove all build cache (as `builder prune`)."),
    ),
    "commit": (
        E("sdcontainer commit -m 'with tools' -c 'CMD [\"sh\"]' web web-snapshot:1",
          "Create an image from the container's changes."),
    ),
    "diff": (
        E("sdcontainer diff web", "Files added (A), changed (C) and deleted (D) in the "
          "container."),
    ),
    "export": (
        E("sdcontainer export -o web-rootfs.tar web",
          "Write the container's filesystem to a tar archive."),
    ),
    "cp": (
        E("sdcontainer cp web:/etc/hostname .", "Copy a file out of a container."),
        E("sdcontainer cp ./site web:/var/www", "Copy a directory into it."),
    ),
    "rename": (
        E("sdcontainer rename web frontend", "Rename container web to frontend."),
    ),
    "update": (
        E("sdcontainer update -m 128m --pids-limit 100 web",
          "Change a running container's limits on its scope."),
    ),
    "container-prune": (
        E("sdcontainer container prune -f", "Remove all stopped containers."),
    ),
    "system-df": (
        E("sdcontainer system df", "Disk used by images, containers and volumes."),
    ),
    "system-prune": (
        E("sdcontainer system prune -f --volumes",
          "Remove stopped containers, unused networks, dangling images and unused "
          "anonymous volumes."),
    ),
    "container": (
        E("sdcontainer container ls -a", "List all containers (as `sdcontainer ps -a`)."),
        E("sdcontainer container rm -f web", "Remove a container (as `sdcontainer rm -f`)."),
    ),
    "system": (
        E("sdcontainer system info", "As `sdcontainer info`."),
        E("sdcontainer system prune -f", "As `sdcontainer system-prune -f`."),
    ),
}

"""sdcontainer: the docker-compatible command line, a thin client of sdcontainerd.

Verbs, flags, output and exit codes follow docker's: `run` exits with the
container's status, 125 when the daemon refused, 126/127 when the command
could not be run; other verbs exit 1 on error.  Errors are one line.
"""

from __future__ import annotations

import sys

from .. import __version__
from ..errors import InvalidArgument, SdcError

# Start-up is paid on every command: this module imports nothing heavy at the top
# (argparse, json, socket, the verbs' modules are imported when a verb needs them), and
# typing only for the checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable
    from typing import Any, NoReturn

    from .client import Client

    Handler = Callable[[Client, argparse.Namespace], int]



# Which module defines each top-level verb: only the one named on the command line is
# imported and put into the parser.  Modules other helpers own join with add_verbs(sub, verb).
VERB_MODULES: dict[str, tuple[str, ...]] = {
    "containercmds": ("run", "create", "start", "attach", "stop", "restart", "kill", "rm",
                      "wait", "ps", "inspect", "logs", "exec", "top"),
    "imagecmds": ("images", "pull", "push", "import", "load", "save", "tag", "rmi", "image",
                  "login", "logout"),
    "netcmds": ("network", "port"),
    "systemdcmds": ("pause", "unpause", "generate", "healthcheck"),
    "tlscmds": ("tls",),
    "syscmds": ("version", "info", "events", "stats"),
    "volumecmds": ("volume",),
    "buildcmd": ("build", "builder", "buildx", "commit", "diff", "export"),
    "cpcmd": ("cp",),
    "maintcmds": ("rename", "update", "container-prune", "system-df", "system-prune"),
}

# docker's management commands, as aliases of the top-level verbs: `container ls` is `ps`.
# (`image`, `network`, `volume` are groups of their own modules.)
GROUPS: dict[str, dict[str, str]] = {
    "container": {"ls": "ps", "list": "ps", "ps": "ps", "remove": "rm",
                  **{v: v for v in ("attach", "commit", "cp", "create", "diff", "exec",
                                    "export", "inspect", "kill", "logs", "pause", "port",
                                    "restart", "rm", "run", "start", "stats", "stop", "top",
                                    "unpause", "wait", "rename", "update")},
                  "prune": "container-prune"},
    "system": {"info": "info", "events": "events", "df": "system-df", "prune": "system-prune"},
}

RUN_VERBS = ("run", "create")


def expand_group(args: list[str]) -> list[str]:
    """`container ls -a` as `ps -a`; `container inspect` only looks for containers."""
    if len(args) < 2 or args[0] not in GROUPS or args[1] not in GROUPS[args[0]]:
        return args
    verb = GROUPS[args[0]][args[1]]
    extra = ["--type", "container"] if (args[0], verb) == ("container", "inspect") else []
    return [verb, *extra, *args[2:]]


def group_help(group: str) -> str:
    """The usage of a management command: its sub-verbs and what they stand for."""
    lines = [f"usage: sdcontainer {group} COMMAND", "", "Commands:"]
    for name, verb in sorted(GROUPS[group].items()):
        lines.append(f"  {name:10} (sdcontainer {verb})")
    return "\n".join(lines)


class _Unused:
    """What `verb` gives for a verb not on the command line: accepts and ignores all."""

    def __getattr__(self, _name: str) -> Any:
        return lambda *a, **k: self


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every verb and flag; with ONLY, just that top-level verb (the others' modules are
    not even imported)."""
    import argparse
    import importlib
    import os

    class Formatter(argparse.HelpFormatter):
        """argparse's, given the width so that it does not import shutil to find it."""

        def __init__(self, prog: str) -> None:
            try:
                width = os.get_terminal_size(2).columns - 2
            except OSError:
                width = 78
            super().__init__(prog, width=width)

    class Parser(argparse.ArgumentParser):
        """argparse, but a mistake is one line naming it, as docker's are."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("formatter_class", Formatter)
            super().__init__(*args, **kwargs)

        def error(self, message: str) -> NoReturn:
            from .client import Usage

            raise Usage(f"{self.prog}: {message}. See '{self.prog} --help'.")

    p = Parser(prog="sdcontainer", description=(__doc__ or "").split("\n")[0])
    p.add_argument("--version", "-v", action="version", version=f"sdcontainer {__version__}")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND")

    def verb(name: str, handler: Handler, helptext: str, *, aliases: list[str] | None = None,
             parent: Any = sub, conflict_h: bool = False) -> argparse.ArgumentParser:
        if parent is sub and only is not None and only != name and \
                only not in (aliases or []):
            unused: Any = _Unused()
            return unused  # type: ignore[no-any-return]
        v: argparse.ArgumentParser = parent.add_parser(
            name, help=helptext, description=helptext, aliases=aliases or [],
            add_help=not conflict_h)
        if conflict_h:
            v.add_argument("--help", action="help", help="show this help message and exit")
        v.set_defaults(handler=handler)
        return v

    for module, verbs in VERB_MODULES.items():
        if only is not None and only not in verbs:
            continue
        try:
            mod = importlib.import_module(f"{__package__}.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{module}":
                raise
            continue  # a verb group not installed (yet)
        if module == "imagecmds":
            from .containercmds import cmd_inspect

            mod.add_verbs(sub, verb, cmd_inspect)
        else:
            mod.add_verbs(sub, verb)
    if only is None:
        for group in GROUPS:
            sub.add_parser(group, help=f"Manage {group}s" if group != "system" else
                           "Manage sdcontainer", add_help=False)
    return p


class _Args:
    """Parsed arguments of a command the fast path recognised."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def fast_path(args: list[str]) -> _Args | None:
    """`version` without flags, parsed without argparse (whose import alone would cost
    the CLI's start-up a third more)."""
    if args == ["version"]:
        from .syscmds import cmd_version

        return _Args(verb="version", format=None, handler=cmd_version)
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the sdcontainer command."""
    from ..errors import DaemonUnavailable

    args = expand_group(sys.argv[1:] if argv is None else argv)
    from .client import APIError, Client, StartError, Usage

    if args[:1] and args[0] in GROUPS:
        print(group_help(args[0]), file=sys.stdout if args[1:2] in ([], ["--help"]) else
              sys.stderr)
        return 0 if args[1:2] in ([], ["--help"]) else 1
    only = args[0] if args and not args[0].startswith("-") and any(
        args[0] in v for v in VERB_MODULES.values()) else None
    ns: Any = fast_path(args)
    if ns is None:
        parser = build_parser(only)
        try:
            ns = parser.parse_args(args)
        except Usage as e:
            print(e, file=sys.stderr)
            return 125 if args[:1] and args[0] in RUN_VERBS else 1
        except SystemExit as e:
            return int(e.code or 0)
        if not getattr(ns, "handler", None):
            parser.print_help()
            return 0
    prefix = "sdcontainer: " if ns.verb in RUN_VERBS else ""
    try:
        code: int = ns.handler(Client(), ns)
        return code
    except APIError as e:
        print(f"{prefix}Error response from daemon: {e}", file=sys.stderr)
        return 125 if ns.verb in RUN_VERBS else 1
    except StartError as e:
        from .containercmds import exec_exit_code

        print(f"{prefix}{e}", file=sys.stderr)
        return exec_exit_code(e.message) if ns.verb == "run" else 1
    except (SdcError, InvalidArgument, DaemonUnavailable) as e:
        print(f"{prefix}{e}", file=sys.stderr)
        return 125 if ns.verb in RUN_VERBS else 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        import contextlib

        with contextlib.suppress(OSError):
            sys.stdout.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())

"""docker's seccomp profile format, and the one interpreter of it.

The default filter is our own profile in that format (seccomp_default.json: an
allow-list with docker's semantics, io_uring left out) and goes through the same
code as `--security-opt seccomp=FILE`.  Three steps, the first two pure Python:

  parse_profile   JSON value -> Profile (InvalidArgument names what is wrong)
  plan            Profile + the container's capabilities, arch and kernel -> Plan:
                  the rules whose includes hold and whose excludes do not
  build           Plan -> a libseccomp filter, names this libseccomp does not know
                  skipped (as runc does)

Where applicable rules disagree about the same call (and the same argument filters),
the most restrictive action wins, in the kernel's own order for stacked filters: a
profile that allows `setns` in one rule and refuses it without CAP_SYS_ADMIN in
another means the refusal (libseccomp alone would keep whichever came first).  A
rule without argument filters covers the whole call, so argument-filtered rules for
that call are dropped, as libseccomp drops them, unless it only restates the default.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import InvalidArgument
from .sandbox_errors import ExecFailure

try:  # imported here, so the zygote holds it and no container start pays for it
    import seccomp as _lib  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    _lib = None

DEFAULT_PROFILE_PATH = Path(__file__).with_name("seccomp_default.json")

# Strongest first (lowest): the kernel's precedence when several filters answer one call.
_STRENGTH = {"SCMP_ACT_KILL_PROCESS": 0, "SCMP_ACT_KILL_THREAD": 1, "SCMP_ACT_KILL": 1,
             "SCMP_ACT_TRAP": 2, "SCMP_ACT_ERRNO": 3, "SCMP_ACT_TRACE": 4, "SCMP_ACT_LOG": 5,
             "SCMP_ACT_ALLOW": 6}
OPS = {"SCMP_CMP_EQ": "EQ", "SCMP_CMP_NE": "NE", "SCMP_CMP_LT": "LT", "SCMP_CMP_LE": "LE",
       "SCMP_CMP_GT": "GT", "SCMP_CMP_GE": "GE", "SCMP_CMP_MASKED_EQ": "MASKED_EQ"}
ARCHES = ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM",
          "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32",
          "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
          "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
          "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64"]
# Filter attributes docker's `flags` may set; the other flags need a notify listener.
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": "CTL_TSYNC", "SECCOMP_FILTER_FLAG_LOG": "CTL_LOG",
         "SECCOMP_FILTER_FLAG_SPEC_ALLOW": "CTL_SSB"}
# uname -m -> the arch names `includes.arches` uses (libseccomp-golang's, as docker's).
_MACHINES = {"x86_64": "amd64", "i386": "x86", "i486": "x86", "i586": "x86", "i686": "x86",
             "aarch64": "arm64", "arm64": "arm64", "ppc64le": "ppc64le", "ppc64": "ppc64",
             "ppc": "ppc", "s390x": "s390x", "s390": "s390", "riscv64": "riscv64",
             "mips64": "mips64", "mips": "mips", "parisc64": "parisc64", "parisc": "parisc"}
# ...and those names -> the architecture `archMap` and `architectures` use.
_SCMP_ARCH = {"amd64": "SCMP_ARCH_X86_64", "x86": "SCMP_ARCH_X86", "x32": "SCMP_ARCH_X32",
              "arm": "SCMP_ARCH_ARM", "arm64": "SCMP_ARCH_AARCH64", "mips": "SCMP_ARCH_MIPS",
              "mips64": "SCMP_ARCH_MIPS64", "mips64n32": "SCMP_ARCH_MIPS64N32",
              "mipsel": "SCMP_ARCH_MIPSEL", "mipsel64": "SCMP_ARCH_MIPSEL64",
              "mipsel64n32": "SCMP_ARCH_MIPSEL64N32", "ppc": "SCMP_ARCH_PPC",
              "ppc64": "SCMP_ARCH_PPC64", "ppc64le": "SCMP_ARCH_PPC64LE",
              "s390": "SCMP_ARCH_S390", "s390x": "SCMP_ARCH_S390X",
              "parisc": "SCMP_ARCH_PARISC", "parisc64": "SCMP_ARCH_PARISC64",
              "riscv64": "SCMP_ARCH_RISCV64"}
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
_UINT64 = (1 << 64) - 1
_MAX_ERRNO = 4095  # the kernel returns no larger errno from a filter


@dataclass(frozen=True)
class Action:
    """An SCMP_ACT_* name and its errno (ERRNO) or tracer message (TRACE)."""

    name: str
    ret: int = 0

    def stronger_than(self, other: Action) -> bool:
        """Whether the kernel would let this action override OTHER."""
        return _STRENGTH[self.name] < _STRENGTH[other.name]


@dataclass(frozen=True)
class ArgFilter:
    """One argument comparison: argument INDEX OP VALUE (MASKED_EQ: arg & VALUE == VALUE_TWO)."""

    index: int
    op: str
    value: int
    value_two: int = 0


@dataclass(frozen=True)
class Condition:
    """A rule's includes or excludes: capabilities, native arches, a minimum kernel."""

    caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    min_kernel: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Rule:
    """One entry of `syscalls`."""

    names: tuple[str, ...]
    action: Action
    args: tuple[ArgFilter, ...] = ()
    includes: Condition = Condition()
    excludes: Condition = Condition()


@dataclass(frozen=True)
class Profile:
    """A whole docker seccomp profile."""

    default: Action
    architectures: tuple[str, ...] = ()
    arch_map: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rules: tuple[Rule, ...] = ()
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedRule:
    """A rule that applies to this container, for one syscall name."""

    name: str
    action: Action
    args: tuple[ArgFilter, ...] = ()


@dataclass(frozen=True)
class Plan:
    """What to hand libseccomp: the default action, the arches, the rules."""

    default: Action
    arches: tuple[str, ...]
    rules: tuple[PlannedRule, ...]
    flags: tuple[str, ...] = ()

    def allowed(self, name: str) -> bool:
        """Whether NAME is allowed at least for some arguments (for tests and audits)."""
        if any(r.name == name for r in self.rules):
            return any(r.name == name and r.action.name == "SCMP_ACT_ALLOW" for r in self.rules)
        return self.default.name == "SCMP_ACT_ALLOW"

    def action_for(self, name: str) -> Action:
        """The action for NAME when no argument filter applies to it."""
        for r in self.rules:
            if r.name == name and not r.args:
                return r.action
        return self.default


# ---- parsing: a JSON value -> Profile, or one line saying what is wrong ----

def _bad(what: str) -> InvalidArgument:
    return InvalidArgument(f"seccomp profile: {what}")


def _int(v: Any, what: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _bad(f"{what} must be an integer from {lo} to {hi}, not {v!r}")
    return v


def _strings(v: Any, what: str) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise _bad(f"{what} must be a list of strings")
    return tuple(v)


def _kernel_version(text: str) -> tuple[int, ...]:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(g) for g in m.groups() if g is not None) if m else ()


def _action(name: Any, ret: Any, where: str) -> Action:
    if name == "SCMP_ACT_NOTIFY":
        raise _bad(f"{where}: SCMP_ACT_NOTIFY needs a notify listener, which sdcontainer "
                   "does not provide")
    if name not in _STRENGTH:
        raise _bad(f"{where}: unknown action {name!r}")
    if name == "SCMP_ACT_KILL_THREAD":
        name = "SCMP_ACT_KILL"  # one action, two spellings
    if name not in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        return Action(name)  # an errnoRet here means nothing, as for runc
    if ret is None:
        return Action(name, errno.EPERM if name == "SCMP_ACT_ERRNO" else 0)
    return Action(name, _int(ret, f"{where}: errnoRet", 0, _MAX_ERRNO))


def _condition(v: Any, what: str) -> Condition:
    if v is None:
        return Condition()
    if not isinstance(v, dict):
        raise _bad(f"{what} must be an object")
    unknown = set(v) - {"caps", "arches", "minKernel"}
    if unknown:
        raise _bad(f"{what}: unknown field {sorted(unknown)[0]!r}")
    min_kernel = None
    if v.get("minKernel") not in (None, ""):
        mk = v["minKernel"]
        if not isinstance(mk, str) or not re.fullmatch(r"\d+\.\d+(\.\d+)?", mk):
            raise _bad(f"{what}.minKernel must look like \"4.8\", not {mk!r}")
        min_kernel = _kernel_version(mk)
    return Condition(caps=tuple(cap_name(c) for c in _strings(v.get("caps"), f"{what}.caps")),
                     arches=_strings(v.get("arches"), f"{what}.arches"), min_kernel=min_kernel)


def _arg(v: Any, where: str) -> ArgFilter:
    if not isinstance(v, dict):
        raise _bad(f"{where}: each argument filter must be an object")
    if v.get("op") not in OPS:
        raise _bad(f"{where}: unknown argument operator {v.get('op')!r}")
    return ArgFilter(index=_int(v.get("index"), f"{where}: argument index", 0, 5), op=v["op"],
                     value=_int(v.get("value", 0), f"{where}: argument value", 0, _UINT64),
                     value_two=_int(v.get("valueTwo", 0) or 0, f"{where}: valueTwo", 0, _UINT64))


def _rule(v: Any, i: int) -> Rule:
    where = f"syscalls[{i}]"
    if not isinstance(v, dict):
        raise _bad(f"{where} must be an object")
    if v.get("name") and v.get("names"):
        raise _bad(f"{where}: use either name or names, not both")
    names = (v["name"],) if v.get("name") else _strings(v.get("names"), f"{where}.names")
    if not names or not all(isinstance(n, str) and n for n in names):
        raise _bad(f"{where} names no syscall")
    args = v.get("args") or []
    if not isinstance(args, list):
        raise _bad(f"{where}.args must be a list")
    return Rule(names=names, action=_action(v.get("action"), v.get("errnoRet"), where),
                args=tuple(_arg(a, where) for a in args),
                includes=_condition(v.get("includes"), f"{where}.includes"),
                excludes=_condition(v.get("excludes"), f"{where}.excludes"))


def _arch(v: Any, what: str) -> str:
    if v not in ARCHES:
        raise _bad(f"{what}: unknown architecture {v!r}")
    return str(v)


def parse_profile(value: Any) -> Profile:
    """A docker seccomp profile (the parsed JSON) as a Profile; InvalidArgument names the
    first thing wrong.  Unknown top-level fields are ignored, as docker ignores them."""
    if not isinstance(value, dict):
        raise _bad("must be a JSON object")
    default = _action(value.get("defaultAction"), value.get("defaultErrnoRet"), "defaultAction")
    if value.get("architectures") and value.get("archMap"):
        raise _bad("use either architectures or archMap, not both")
    architectures = tuple(_arch(a, "architectures")
                          for a in _strings(value.get("architectures"), "architectures"))
    arch_map = []
    amap = value.get("archMap") or []
    if not isinstance(amap, list):
        raise _bad("archMap must be a list")
    for entry in amap:
        if not isinstance(entry, dict):
            raise _bad("each archMap entry must be an object")
        subs = _strings(entry.get("subArchitectures"), "archMap subArchitectures")
        arch_map.append((_arch(entry.get("architecture"), "archMap"),
                         tuple(_arch(s, "archMap subArchitectures") for s in subs)))
    flags = _strings(value.get("flags"), "flags")
    for flag in flags:
        if flag not in FLAGS:
            raise _bad(f"unsupported flag {flag!r}")
    syscalls = value.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise _bad("syscalls must be a list")
    return Profile(default=default, architectures=architectures, arch_map=tuple(arch_map),
                   rules=tuple(_rule(r, i) for i, r in enumerate(syscalls)), flags=flags)


def load_profile(text: str) -> Profile:
    """A profile from its JSON text."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise _bad(f"not valid JSON: {e}") from None
    return parse_profile(value)


# ---- planning: which rules apply to this container ----

def cap_name(name: str) -> str:
    """'cap_net_admin', 'NET_ADMIN', 'CAP_NET_ADMIN' -> 'NET_ADMIN'."""
    upper = name.strip().upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def native_arch() -> str:
    """This machine's arch as profiles name it in includes.arches ("amd64", "arm64"...)."""
    machine = os.uname().machine
    return _MACHINES.get(machine, "arm" if machine.startswith("arm") else machine)


def kernel_release() -> tuple[int, ...]:
    """The running kernel's version, (6, 1, 0) for "6.1.0-13-amd64"."""
    return _kernel_version(os.uname().release)


def _holds(cond: Condition, caps: set[str], arch: str, kernel: tuple[int, ...],
           every: bool) -> bool:
    """Includes (EVERY=True): all given conditions hold.  Excludes (EVERY=False): any does."""
    checks = []
    if cond.caps:
        present = [c in caps for c in cond.caps]
        checks.append(all(present) if every else any(present))
    if cond.arches:
        checks.append(arch in cond.arches)
    if cond.min_kernel is not None:
        checks.append(kernel >= cond.min_kernel)
    return all(checks) if every else any(checks)


def plan(profile: Profile, caps: list[str], arch: str | None = None,
         kernel: tuple[int, ...] | None = None) -> Plan:
    """The rules of PROFILE that apply to a container holding CAPS (effective set) on ARCH
    (default: this machine) under KERNEL (default: the running one), merged per call."""
    arch = arch or native_arch()
    kernel = kernel if kernel is not None else kernel_release()
    held = {cap_name(c) for c in caps}
    whole: dict[str, Action] = {}  # name -> action for a rule with no argument filter
    filtered: dict[str, dict[tuple[ArgFilter, ...], Action]] = {}
    for rule in profile.rules:
        if not _holds(rule.includes, held, arch, kernel, every=True) or \
                _holds(rule.excludes, held, arch, kernel, every=False):
            continue
        for name in rule.names:
            if not rule.args:
                if name not in whole or rule.action.stronger_than(whole[name]):
                    whole[name] = rule.action
            else:
                # Repeated argument index: runc makes one rule of each comparison (OR).
                indexes = [a.index for a in rule.args]
                groups = [(a,) for a in rule.args] if len(set(indexes)) < len(indexes) \
                    else [rule.args]
                chains = filtered.setdefault(name, {})
                for g in groups:
                    if g not in chains or rule.action.stronger_than(chains[g]):
                        chains[g] = rule.action
    rules: list[PlannedRule] = []
    for name, action in whole.items():
        if action != profile.default:
            rules.append(PlannedRule(name, action))
    for name, chains in filtered.items():
        # A whole-call rule that merely restates the default leaves the argument rules
        # their say, as runc skips such a rule.
        if whole.get(name, profile.default) == profile.default:
            rules += [PlannedRule(name, a, g) for g, a in chains.items() if a != profile.default]
    return Plan(default=profile.default, arches=_arches(profile, arch), rules=tuple(rules),
                flags=profile.flags)


def _arches(profile: Profile, arch: str) -> tuple[str, ...]:
    if profile.architectures:
        return profile.architectures
    native = _SCMP_ARCH.get(arch, "")
    for main, subs in profile.arch_map:
        if main == native:
            return (main, *subs)
    return (native,) if native else ()


# ---- building: Plan -> libseccomp filter ----

def _module() -> Any:
    if _lib is None:
        raise ExecFailure(125, "seccomp support is missing (install python3-seccomp), or run "
                          "with --security-opt seccomp=unconfined")
    return _lib


def _lib_action(lib: Any, action: Action) -> Any:
    name = action.name
    if name == "SCMP_ACT_ALLOW":
        return lib.ALLOW
    if name == "SCMP_ACT_ERRNO":
        return lib.ERRNO(action.ret)
    if name == "SCMP_ACT_TRACE":
        return lib.TRACE(action.ret)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return lib.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return lib.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return lib.TRAP
    return lib.LOG


def known_syscall(name: str) -> bool:
    """Whether libseccomp knows NAME on some arch (unknown names are skipped, as runc does)."""
    lib = _module()
    return int(lib.resolve_syscall(lib.Arch.NATIVE, name)) != -1  # __NR_SCMP_ERROR


def build(p: Plan) -> Any:
    """The libseccomp filter for plan P (not loaded)."""
    lib = _module()
    f = lib.SyscallFilter(defaction=_lib_action(lib, p.default))
    for arch in p.arches:
        # The native arch is already there (EEXIST), and runc adds the rest this way too.
        with contextlib.suppress(RuntimeError):
            f.add_arch(getattr(lib.Arch, arch.removeprefix("SCMP_ARCH_")))
    for flag in p.flags:
        f.set_attr(getattr(lib.Attr, FLAGS[flag]), 1)
    for r in p.rules:
        if not known_syscall(r.name):
            continue
        args = [lib.Arg(a.index, getattr(lib, OPS[a.op]), a.value, a.value_two)
                if a.op == "SCMP_CMP_MASKED_EQ" else lib.Arg(a.index, getattr(lib, OPS[a.op]),
                                                             a.value)
                for a in r.args]
        try:
            f.add_rule(_lib_action(lib, r.action), r.name, *args)
        except (RuntimeError, ValueError, OSError) as e:
            raise ExecFailure(125, f"seccomp profile: cannot add the rule for {r.name}: "
                              f"{e}") from e
    return f


def _read_default() -> Profile:
    try:
        return load_profile(DEFAULT_PROFILE_PATH.read_text())
    except (OSError, InvalidArgument) as e:  # a broken install: say so at first use
        raise ExecFailure(125, f"the default seccomp profile {DEFAULT_PROFILE_PATH} is "
                          f"unusable: {e}") from e


_DEFAULT: Profile | None = None


def default_profile() -> Profile:
    """Our default profile, parsed once (the zygote parses it before forking)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = _read_default()
    return _DEFAULT


with contextlib.suppress(ExecFailure):  # read now, in the zygote; a broken file fails at use
    default_profile()


def filter_for(mode: str, caps: list[str]) -> Any:
    """The filter for a LaunchSpec's seccomp MODE ("default" or a profile's JSON text)."""
    try:
        profile = default_profile() if mode == "default" else load_profile(mode)
    except InvalidArgument as e:
        raise ExecFailure(125, str(e)) from e
    return build(plan(profile, caps))


# BPF libseccomp generated ahead of time for the default profile, by capability set:
# generating ~1000 instructions costs more than the rest of a container's start, so
# the daemon does it once at import and the zygote's children inherit the bytes.
_COMPILED: dict[frozenset[str], bytes] = {}


def precompile(caps: list[str]) -> None:
    """Generate the default filter's BPF for CAPS now (best effort: a failure here is
    reported again, in full, by the container that needs the filter)."""
    with contextlib.suppress(Exception):
        f = filter_for("default", caps)
        with os.fdopen(os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC), "w+b") as out:
            f.export_bpf(out)
            out.seek(0)
            _COMPILED[frozenset(cap_name(c) for c in caps)] = out.read()


_LIBC = ctypes.CDLL(None, use_errno=True)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _load_bpf(program: bytes) -> None:
    """Install PROGRAM (struct sock_filter[]) as libseccomp's load would (no flags)."""
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if _LIBC.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise ExecFailure(125, f"cannot load the seccomp filter: {os.strerror(err)}")


def install(mode: str, caps: list[str]) -> None:
    """Load the filter for MODE ("default", "unconfined", or a JSON profile's text).  Done
    while we still hold CAP_SYS_ADMIN, or after no_new_privs, as the caller arranges."""
    if mode == "unconfined":
        return
    compiled = _COMPILED.get(frozenset(cap_name(c) for c in caps)) if mode == "default" \
        else None
    if compiled is not None:
        _load_bpf(compiled)
        return
    f = filter_for(mode, caps)
    try:
        f.set_attr(_module().Attr.CTL_NNP, 0)
        f.load()
    except Exception as e:
        raise ExecFailure(125, f"cannot load the seccomp filter: {e}") from e

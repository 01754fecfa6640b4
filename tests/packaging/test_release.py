"""The release files, the man pages, the completion, the RPM spec and the PKGBUILD."""

from __future__ import annotations

import argparse
import gzip
import re
import zipfile
from pathlib import Path

import pytest

from sdcontainer import manpages
from sdcontainer.cli import main as cli_main
from sdcontainer.cli.main import build_parser
from sdcontainer.network.config import NetworkConfig

from .conftest import REPO, deb_name, sh, version

PAGES = ["man1/sdcontainer.1", "man8/sdcontainerd.8", "man5/sdcontainer.toml.5",
         "man5/sdcontainer.container.5", "man5/org.sdcontainer1.5"]


def test_checksums_verify(release: Path) -> None:
    v = version()
    names = {f"sdcontainer-{v}.tar.gz", f"sdcontainer-{v}-py3-none-any.whl", deb_name()}
    for sums, tool in (("SHA256SUMS", "sha256sum"), ("MD5SUMS", "md5sum")):
        listed = {line.split()[1] for line in (release / sums).read_text().splitlines()}
        assert listed == names
        r = sh(tool, "-c", sums, cwd=release)
        assert r.stdout.count(": OK") == 3, r.stdout
    # A changed byte is caught.
    (release / "tampered").mkdir()
    for n in (*names, "SHA256SUMS"):
        (release / "tampered" / n).write_bytes((release / n).read_bytes())
    whl = release / "tampered" / f"sdcontainer-{v}-py3-none-any.whl"
    whl.write_bytes(whl.read_bytes() + b"x")
    assert sh("sha256sum", "-c", "SHA256SUMS", cwd=release / "tampered",
              check=False).returncode != 0


def test_wheel_and_sdist_carry_the_commit_and_the_packaging(release: Path) -> None:
    v = version()
    with zipfile.ZipFile(release / f"sdcontainer-{v}-py3-none-any.whl") as z:
        build = z.read("sdcontainer/_build.py").decode()
    head = sh("git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD").stdout.strip()
    assert re.search(rf'COMMIT = "{head}(-dirty)?"', build), build
    listing = sh("tar", "tzf", str(release / f"sdcontainer-{v}.tar.gz")).stdout.split()
    for f in ("units/sdcontainerd.service", "packaging/install-data",
              "packaging/rpm/sdcontainer.spec", "docs/man/sdcontainer.toml.5.md",
              "native/build", "native/sdc-monitor.c"):
        assert f"sdcontainer-{v}/{f}" in listing


def test_deb_metadata(deb: Path) -> None:
    fields = dict(re.findall(r"^ ?(\w[\w-]*): (.*)$", sh("dpkg-deb", "-I", str(deb)).stdout,
                             re.M))
    arch = sh("dpkg", "--print-architecture").stdout.strip()
    assert fields["Version"] == version() and fields["Architecture"] == arch
    depends = fields["Depends"]
    for pkg in ("python3-pystemd", "python3-dbus-fast", "python3-pyroute2", "nftables",
                "iproute2", "systemd", "dbus", "python3:any", "libc6"):
        assert re.search(rf"(^|, ){re.escape(pkg)}( \(|,|$)", depends), (pkg, depends)
    assert "busybox" not in depends


def test_deb_contents(deb_tree: Path) -> None:
    for f in ("usr/bin/sdcontainer", "usr/bin/sdcontainerd",
              "lib/systemd/system/sdcontainerd.service", "lib/systemd/system/sdcontainer.slice",
              "usr/lib/sysusers.d/sdcontainer.conf", "usr/lib/tmpfiles.d/sdcontainer.conf",
              "usr/share/bash-completion/completions/sdcontainer",
              "usr/lib/python3/dist-packages/sdcontainer/cli/main.py",
              *(f"usr/share/man/{p}.gz" for p in PAGES)):
        assert (deb_tree / f).is_file(), f
    assert (deb_tree / "usr/bin/sdcontainer").read_text().startswith("#!/usr/bin/python3\n")
    # The native monitor, where runtime/monitor.py looks for it: built with Debian's
    # hardening (PIE, bindnow) and linked against libc alone.
    monitor = deb_tree / "usr/libexec/sdcontainer/sdc-monitor"
    assert monitor.is_file() and monitor.stat().st_mode & 0o777 == 0o755
    dynamic = sh("readelf", "--dynamic", str(monitor)).stdout
    assert re.findall(r"\(NEEDED\).*\[(.*)\]", dynamic) == ["libc.so.6"], dynamic
    assert re.search(r"FLAGS_1\).*\bNOW\b.*\bPIE\b", dynamic), dynamic
    unit = (deb_tree / "lib/systemd/system/sdcontainerd.service").read_text()
    exec_start = re.search(r"^ExecStart=(\S+)", unit, re.M)
    assert exec_start and (deb_tree / exec_start.group(1).lstrip("/")).is_file()
    # Every unit file in units/ made it into the package.
    for f in (REPO / "units").iterdir():
        if f.suffix in (".service", ".slice", ".socket", ".timer", ".target"):
            assert (deb_tree / "lib/systemd/system" / f.name).read_text() == f.read_text()
    for f, where in (("org.sdcontainer1.conf", "usr/share/dbus-1/system.d"),
                     ("org.sdcontainer1.policy", "usr/share/polkit-1/actions"),
                     ("50-sdcontainer.rules", "usr/share/polkit-1/rules.d")):
        assert (deb_tree / where / f).read_text() == (REPO / "units" / f).read_text()
    tmpfiles = (deb_tree / "usr/lib/tmpfiles.d/sdcontainer.conf").read_text()
    assert "d /var/lib/sdcontainer 0700 root root" in tmpfiles
    assert "d /run/sdcontainer 0755 root root" in tmpfiles
    assert re.search(r"^g sdcontainer ", (deb_tree / "usr/lib/sysusers.d/sdcontainer.conf")
                     .read_text(), re.M)


def test_man_pages_render(deb_tree: Path) -> None:
    for page in PAGES:
        path = deb_tree / "usr/share/man" / f"{page}.gz"
        r = sh("man", "--warnings", "-l", str(path), env={"MANWIDTH": "80", "MAN_KEEP_FORMATTING":
                                                           ""})
        assert r.stderr == "", (page, r.stderr)
        name = Path(page).name.rsplit(".", 1)[0]
        assert r.stdout.startswith(f"{name.upper()}("), r.stdout[:200]
        assert "NAME" in r.stdout and "SEE ALSO" in r.stdout


def subparsers(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [p]
    for _name, _aliases, _help, sub in manpages.subcommands(p):
        found += subparsers(sub)
    return found


def test_man_page_is_the_parser(deb_tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sdcontainer(1) in the package is exactly what the parser generates, every flag in it."""
    epoch = sh("dpkg-parsechangelog", "-l", str(REPO / "packaging/debian/changelog"),
               "-STimestamp").stdout.strip()
    packaged = gzip.decompress((deb_tree / "usr/share/man/man1/sdcontainer.1.gz").read_bytes())
    monkeypatch.setenv("SOURCE_DATE_EPOCH", epoch)
    parser = build_parser()
    fresh = manpages.cli_page(parser, manpages.summary(cli_main.__doc__))
    assert packaged.decode() == fresh
    text = sh("man", "-l", str(deb_tree / "usr/share/man/man1/sdcontainer.1.gz"),
              env={"MANWIDTH": "200"}).stdout
    for p in subparsers(parser):
        assert p.prog in text, p.prog
        for action in p._actions:
            for flag in action.option_strings:
                assert flag in text, (p.prog, flag)


def test_config_page_names_every_key(deb_tree: Path) -> None:
    text = sh("man", "-l", str(deb_tree / "usr/share/man/man5/sdcontainer.toml.5.gz"),
              env={"MANWIDTH": "200"}).stdout
    defaults = NetworkConfig()
    for key in NetworkConfig.__dataclass_fields__:
        assert f"{key} = " in text, key
        value = getattr(defaults, key)
        if isinstance(value, str):
            assert f'"{value}"' in text, (key, value)
    for key in ("[registries]", "default = ", "insecure = ", "[registries.mirrors]"):
        assert key in text


def test_bash_completion(deb_tree: Path) -> None:
    script = deb_tree / "usr/share/bash-completion/completions/sdcontainer"

    def complete(*words: str) -> list[str]:
        quoted = " ".join(f"'{w}'" for w in words)
        r = sh("bash", "-c", f"source {script}; COMP_WORDS=(sdcontainer {quoted}); "
               f"COMP_CWORD={len(words)}; _sdcontainer; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
        return r.stdout.split()

    assert complete("ru") == ["run"]
    assert "--stop-timeout" in complete("run", "--stop-t")
    assert set(complete("image", "")) >= {"ls", "pull", "prune", "rm"}
    assert complete("image", "prune", "--a") == ["--all"]


def test_rpm_spec_parses_and_lints() -> None:
    spec = REPO / "packaging/rpm/sdcontainer.spec"
    r = sh("rpmspec", "-P", str(spec))
    assert re.search(rf"^Version:\s+{re.escape(version())}$", r.stdout, re.M)
    assert "%systemd_post sdcontainerd.service" in r.stdout
    assert "%pyproject_install" in r.stdout
    assert "native/build --package build/native/sdc-monitor" in r.stdout
    assert re.search(r"^install .* build/native/sdc-monitor "
                     r"\S+/usr/libexec/sdcontainer/sdc-monitor$", r.stdout, re.M)
    q = sh("rpmspec", "-q", "--qf", "%{name} %{version}\n", str(spec))
    assert q.stdout.split() == ["sdcontainer", version()]
    lint = sh("rpmlint", "-r", str(REPO / "packaging/rpm/sdcontainer.rpmlintrc"), str(spec),
              check=False)
    assert lint.returncode == 0 and "0 errors, 0 warnings" in lint.stdout, lint.stdout


def test_pkgbuild_parses() -> None:
    pkgbuild = REPO / "packaging/arch/PKGBUILD"
    sh("bash", "-n", str(pkgbuild))
    r = sh("bash", "-euc", f'source {pkgbuild}; echo "$pkgname $pkgver ${{arch[*]}}"; '
           "declare -F build package; printf '%s\\n' \"${depends[@]}\"")
    lines = r.stdout.splitlines()
    assert lines[0] == f"sdcontainer {version()} x86_64 aarch64"
    assert "build" in lines and "package" in lines
    # The native monitor: built, and installed where runtime/monitor.py looks on Arch.
    text = pkgbuild.read_text()
    assert "native/build --package build/native/sdc-monitor" in text
    assert '"$pkgdir/usr/lib/sdcontainer/sdc-monitor"' in text
    assert {"python-pystemd", "python-dbus-fast", "python-pyroute2", "nftables"} <= set(lines)


def test_install_data_refuses_unknown_files(tmp_path: Path) -> None:
    """A new kind of file in units/ stops the build instead of being left out."""
    tree = tmp_path / "src"
    tree.mkdir()
    sh("cp", "-a", str(REPO / "packaging"), str(REPO / "units"), str(REPO / "docs"),
       str(REPO / "sdcontainer"), "--target-directory", str(tree))
    (tree / "units" / "mystery.xyz").write_text("?")
    r = sh(str(tree / "packaging/install-data"), str(tmp_path / "dest"), check=False)
    assert r.returncode != 0 and "mystery.xyz" in r.stderr

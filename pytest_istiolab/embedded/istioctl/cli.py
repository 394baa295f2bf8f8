"""Command line of the embedded istioctl: real istioctl 1.26 command and flag names.

Modelled: ``install`` (alias ``apply``), ``upgrade`` and ``manifest apply``, ``manifest
generate``, ``uninstall``, ``version``, ``proxy-status``, ``tag set/list/remove``, ``x
precheck``, ``profile list``, ``kube-inject``, ``analyze``. One program plays every modelled
release: ``--istiolab-client-version`` (written by the embedded cluster into its
``bin/istioctl-<version>`` wrappers) says which istioctl it is.
Anything else is refused with one line naming what is modelled (exit 1), never a traceback.
Global flags (``-c/--kubeconfig``, ``--context``, ``-i/--istioNamespace``) work before or
after the command, as with cobra.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, TextIO

import yaml

from ..install import InstallError, render_spec, resolve
from ..install.profiles import ISTIO_VERSION
from ..install.releases import MODELLED_VERSIONS
from . import commands
from .backend import ApiError, Backend
from .installer import Installer, InstallFailed

MODELLED = ("install, upgrade, manifest apply, uninstall, version, proxy-status, tag, "
            "x precheck, profile list, kube-inject, analyze")
DEFAULT_KUBECONFIG_FLAG = "--istiolab-default-kubeconfig"
CLIENT_VERSION_FLAG = "--istiolab-client-version"
SAILBOAT = r"""        |\
        | \
        |  \
        |   \
      /||    \
     / ||     \
    /  ||      \
   /   ||       \
  /    ||        \
 /     ||         \
/______||__________\
____________________
  \__       _____/
     \_____/
"""


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.format_usage()}{self.prog}: error: {message}")


def _globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("-c", "--kubeconfig", default=default)
    parser.add_argument("--context", default=default)
    parser.add_argument("-i", "--istioNamespace", dest="istio_namespace",
                        default=default if suppress else "istio-system")
    parser.add_argument("--vklog", default=argparse.SUPPRESS)


def _install_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--filename", action="append", default=[])
    p.add_argument("-s", "--set", action="append", default=[])
    p.add_argument("-y", "--skip-confirmation", action="store_true")
    p.add_argument("--readiness-timeout", default="300s")
    p.add_argument("--force", action="store_true")
    p.add_argument("-r", "--revision", default="")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("-d", "--manifests", default=None)
    p.add_argument("--verify", action="store_true")


def build_parser() -> Parser:
    root = Parser(prog="istioctl", add_help=True)
    _globals(root, suppress=False)
    common = Parser(add_help=False)
    _globals(common, suppress=True)
    sub = root.add_subparsers(dest="command", parser_class=Parser)
    for name in ("install", "apply", "upgrade"):
        _install_flags(sub.add_parser(name, parents=[common]))
    manifest = sub.add_parser("manifest", parents=[common]).add_subparsers(
        dest="subcommand", parser_class=Parser)
    _install_flags(manifest.add_parser("apply", parents=[common]))
    gen = manifest.add_parser("generate", parents=[common])
    gen.add_argument("-f", "--filename", action="append", default=[])
    gen.add_argument("-s", "--set", action="append", default=[])
    gen.add_argument("-o", "--output", default=None)
    un = sub.add_parser("uninstall", parents=[common])
    un.add_argument("--purge", action="store_true")
    un.add_argument("-y", "--skip-confirmation", action="store_true")
    un.add_argument("-r", "--revision", default="")
    un.add_argument("-f", "--filename", action="append", default=[])
    un.add_argument("-s", "--set", action="append", default=[])
    un.add_argument("--dry-run", action="store_true")
    ver = sub.add_parser("version", parents=[common])
    ver.add_argument("--remote", default="true", nargs="?", const="true")
    ver.add_argument("--short", action="store_true")
    ver.add_argument("-o", "--output", default="")
    ver.add_argument("-r", "--revision", default="")
    for x in ("x", "experimental"):
        xs = sub.add_parser(x, parents=[common]).add_subparsers(dest="subcommand",
                                                                parser_class=Parser)
        pre = xs.add_parser("precheck", parents=[common])
        pre.add_argument("-r", "--revision", default="")
        pre.add_argument("-f", "--filename", action="append", default=[])
    prof = sub.add_parser("profile", parents=[common]).add_subparsers(
        dest="subcommand", parser_class=Parser)
    prof.add_parser("list", parents=[common])
    ki = sub.add_parser("kube-inject", parents=[common])
    ki.add_argument("-f", "--filename", required=True)
    ki.add_argument("-o", "--output", default=None)
    ki.add_argument("-r", "--revision", default="")
    for flag in ("--meshConfigFile", "--injectConfigFile", "--valuesFile",
                 "--meshConfigMapName", "--injectConfigMapName"):
        ki.add_argument(flag, default=None)
    an = sub.add_parser("analyze", parents=[common])
    an.add_argument("-n", "--namespace", default=None)
    an.add_argument("-A", "--all-namespaces", action="store_true")
    an.add_argument("files", nargs="*")
    for name in ("proxy-status", "ps"):
        ps = sub.add_parser(name, parents=[common])
        ps.add_argument("pod", nargs="?", default=None)
        ps.add_argument("-n", "--namespace", default=None)
        ps.add_argument("-r", "--revision", default="")
    tag = sub.add_parser("tag", parents=[common]).add_subparsers(dest="subcommand",
                                                                 parser_class=Parser)
    tag_set = tag.add_parser("set", parents=[common])
    tag_set.add_argument("tag")
    tag_set.add_argument("-r", "--revision", default="")
    tag_set.add_argument("--overwrite", action="store_true")
    tag_set.add_argument("-y", "--skip-confirmation", action="store_true")
    tag.add_parser("list", parents=[common]).add_argument("-o", "--output", default="table")
    tag_rm = tag.add_parser("remove", parents=[common])
    tag_rm.add_argument("tag")
    tag_rm.add_argument("-y", "--skip-confirmation", action="store_true")
    for name in ("proxy-config", "pc"):
        sub.add_parser(name, parents=[common]).add_argument("rest", nargs=argparse.REMAINDER)
    return root


KNOWN = {"install": None, "apply": None, "upgrade": None, "manifest": ("apply", "generate"),
         "uninstall": None, "proxy-status": None, "ps": None, "tag": ("set", "list", "remove"),
         "version": None, "x": ("precheck",), "experimental": ("precheck",),
         "profile": ("list",), "kube-inject": None, "analyze": None, "proxy-config": None,
         "pc": None}
_VALUE_FLAGS = {"-c", "--kubeconfig", "--context", "-i", "--istioNamespace", "--vklog"}


def unmodelled_command(argv: list[str]) -> str | None:
    """The command (``"x wait"``) if ``argv`` names one the embedded istioctl lacks."""
    words, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            skip = arg in _VALUE_FLAGS
            continue
        words.append(arg)
        if len(words) == 2:
            break
    if not words or words[0] in ("help",):
        return None
    subs = KNOWN.get(words[0], ())
    if words[0] not in KNOWN:
        return words[0]
    if subs and (len(words) < 2 or words[1] not in subs):
        return " ".join(words[:2])
    return None


def main(argv: list[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None, backend: Backend | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    out, err = stdout or sys.stdout, stderr or sys.stderr
    default_kubeconfig = None
    if DEFAULT_KUBECONFIG_FLAG in args_in:
        i = args_in.index(DEFAULT_KUBECONFIG_FLAG)
        default_kubeconfig = args_in[i + 1] if i + 1 < len(args_in) else None
        del args_in[i:i + 2]
    version = ISTIO_VERSION
    if CLIENT_VERSION_FLAG in args_in:
        i = args_in.index(CLIENT_VERSION_FLAG)
        version = args_in[i + 1] if i + 1 < len(args_in) else ""
        del args_in[i:i + 2]
        if version not in MODELLED_VERSIONS:
            err.write(f"Error: the embedded istioctl models Istio {', '.join(MODELLED_VERSIONS)}"
                      f", not {version!r}\n")
            return 1
    if args_in[:1] == ["help"]:
        out.write(build_parser().format_help())
        return 0
    missing = unmodelled_command(args_in)
    if missing is not None:
        err.write(f'the embedded cluster\'s istioctl does not model "{missing}"; it models: '
                  f"{MODELLED}\n")
        return 1
    try:
        args = build_parser().parse_args(args_in)
    except UsageError as exc:
        err.write(f"{exc}\n")
        return 1
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if not args.command:
        out.write(build_parser().format_help())
        return 0
    from .run import Runner

    runner = Runner(args, stdin or sys.stdin, out, err, backend, default_kubeconfig, version)
    try:
        return runner.run()
    except (InstallError, InstallFailed, commands.CommandError) as exc:
        err.write(f"Error: {getattr(exc, 'message', str(exc))}\n")
        return getattr(exc, "code", 1)
    except ApiError as exc:
        err.write(f"Error: {exc.message}\n")
        return 1


def kubeconfig_path(args: argparse.Namespace, default: str | None) -> str | None:
    return args.kubeconfig or default or os.environ.get("KUBECONFIG") or None


def sets_of(pairs: list[str]) -> dict[str, str]:
    sets = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InstallError(f'--set {pair}: expected "path=value"')
        sets[key.strip()] = value
    return sets


def render_yaml(profile: str | None, sets: dict[str, str], operator: dict | None,
                version: str = ISTIO_VERSION) -> str:
    objs = render_spec(resolve(profile, sets, operator, version))
    return "---\n".join(yaml.safe_dump(o, sort_keys=False) for o in objs)


__all__ = ["ISTIO_VERSION", "SAILBOAT", "Installer", "main", "render_yaml"]

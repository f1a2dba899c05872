"""`secrets-get`: a command that prints the secrets it is asked for, for tests, demos and debugging.

The Python twin of guest/components/secrets-get (same arguments, output and exit codes):

    secrets-get                      the names this component may read, one per line
    secrets-get NAME...              NAME=VALUE for each name
    secrets-get NAME@VERSION         NAME@VERSION=VALUE, one version of a secret
    secrets-get --info NAME          the metadata of NAME as key=value lines, never the value

A failure prints `NAME: <error-kind>: <message>` (or `list: ...`), on stdout like the values so
that the output keeps the order of the arguments. The exit code is 1 if anything failed, 2 for a
usage error, 0 otherwise. `--` ends the options, for names that start with `-`.
"""

import sys

from wit_world import exports
from wit_world.imports import exit as wasi_exit

import wasm_secrets

USAGE = "usage: secrets-get [NAME | NAME@VERSION | --info NAME]... [-- NAME...]"


class UsageError(Exception):
    """The command line is wrong; the message says how."""


class Request:
    """One thing asked for on the command line: `get`, `get-version` or `info`."""

    def __init__(self, op, name, version=None):
        self.op = op
        self.name = name
        self.version = version

    def label(self):
        """How the request is named in the output: the argument as given."""
        if self.op == "get-version":
            return f"{self.name}@{self.version}"
        return self.name

    def run(self):
        """Asks the host and returns the lines to print; raises wasm_secrets.SecretError."""
        if self.op == "get":
            return [f"{self.label()}={wasm_secrets.get(self.name)}"]
        if self.op == "get-version":
            value = wasm_secrets.get_version(self.name, self.version)
            return [f"{self.label()}={value}"]
        return info_lines(wasm_secrets.info(self.name))


def info_lines(info):
    """The metadata as `key=value` lines; an absent optional field prints as `key=`, each tag as
    `tag.KEY=VALUE`."""

    def opt(v):
        return "" if v is None else str(v)

    lines = [
        f"name={info.name}",
        f"version={info.version}",
        f"enabled={'true' if info.enabled else 'false'}",
        f"content-type={opt(info.content_type)}",
        f"not-before={opt(info.not_before)}",
        f"expires={opt(info.expires)}",
        f"created={opt(info.created)}",
        f"updated={opt(info.updated)}",
    ]
    lines.extend(f"tag.{k}={v}" for k, v in info.tags)
    return lines


def parse(args):
    """Turns the arguments into requests; raises UsageError."""
    requests = []
    it = iter(args)
    options = True
    for arg in it:
        if arg == "--" and options:
            options = False
        elif arg == "--info" and options:
            name = next(it, None)
            if name is None:
                raise UsageError("--info needs a NAME")
            requests.append(Request("info", name))
        elif "@" in arg:
            name, _, version = arg.partition("@")
            requests.append(Request("get-version", name, version))
        else:
            requests.append(Request("get", arg))
    return requests


def answer(requests, out):
    """Prints the answers to `requests`, or the list of names if there are none. Returns whether
    everything succeeded."""
    if not requests:
        try:
            names = wasm_secrets.list()
        except wasm_secrets.SecretError as err:
            out.write(f"list: {err}\n")
            return False
        for name in names:
            out.write(f"{name}\n")
        return True
    all_ok = True
    for request in requests:
        try:
            lines = request.run()
        except wasm_secrets.SecretError as err:
            all_ok = False
            out.write(f"{request.label()}: {err}\n")
            continue
        for line in lines:
            out.write(f"{line}\n")
    return all_ok


def main(args):
    """Runs the command; returns the exit code."""
    if args[:1] in (["-h"], ["--help"]):
        sys.stdout.write(f"{USAGE}\n")
        return 0
    try:
        requests = parse(args)
    except UsageError as e:
        sys.stderr.write(f"secrets-get: {e}\n{USAGE}\n")
        return 2
    try:
        ok = answer(requests, sys.stdout)
        sys.stdout.flush()
    except OSError as e:
        sys.stderr.write(f"secrets-get: cannot write to stdout: {e}\n")
        return 1
    return 0 if ok else 1


def exit_with(code):
    """Flushes stdout and stderr and ends the component with `code` (returns for 0)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass
    if code != 0:
        # wasi:cli/exit.exit-with-code (stable since wasi 0.2.12) passes the exact code to the
        # host; raising SystemExit or componentize_py_types.Err(None) from run would give 1.
        wasi_exit.exit_with_code(code)


class Run(exports.Run):
    """The wasi:cli/run export: the component's `main`."""

    def run(self) -> None:
        exit_with(main(sys.argv[1:]))

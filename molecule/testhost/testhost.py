#!/usr/bin/env python3
"""Disposable Debian 13 test hosts booted with systemd-nspawn, and local stand-in images.

  testhost.py create NAME --ssh-port PORT   boot NAME (idempotent), print how to reach it (JSON)
  testhost.py destroy NAME                  power NAME off and remove its files
  testhost.py reboot NAME                   power NAME off and boot it again
  testhost.py run NAME -- CMD [ARGS...]     run CMD inside NAME as root
  testhost.py list                          print the test hosts (JSON)
  testhost.py standins                      build (once) the stand-in images, print their archives

State lives in $SENEX_TESTHOST_DIR (/var/lib/senex-testhost), caches in $SENEX_TESTHOST_CACHE
(/var/cache/senex-testhost). Must run as root.
"""

import argparse
import json
import sys

import hosts
import standins
from common import TesthostError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="boot a test host")
    create.add_argument("name")
    create.add_argument("--ssh-port", type=int, required=True)
    for name in ("destroy", "reboot"):
        commands.add_parser(name).add_argument("name")
    run = commands.add_parser("run", help="run a command inside a test host")
    run.add_argument("name")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    commands.add_parser("list")
    commands.add_parser("standins")
    args = parser.parse_args(argv)

    try:
        if args.command == "create":
            print(json.dumps(hosts.create(args.name, args.ssh_port)))
        elif args.command == "destroy":
            print(json.dumps(hosts.destroy(args.name)))
        elif args.command == "reboot":
            print(json.dumps(hosts.reboot(args.name)))
        elif args.command == "run":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                parser.error("run needs a command: testhost.py run NAME -- CMD [ARGS...]")
            return hosts.run_command(args.name, cmd)
        elif args.command == "list":
            print(json.dumps(hosts.hosts(), indent=2))
        elif args.command == "standins":
            print(json.dumps(standins.build()))
    except TesthostError as error:
        print(f"testhost: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

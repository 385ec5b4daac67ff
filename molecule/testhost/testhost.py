#!/usr/bin/env python3
"""Disposable Debian 13 test hosts booted with systemd-nspawn, and local stand-in images.

  testhost.py create NAME --ssh-port PORT   boot NAME (idempotent), print how to reach it (JSON)
      [--lab LAB --address ADDR [--forward LOCAL:REMOTE ...]]
                                            ... in its own namespace on lab LAB, reached
                                            through forwarders on 127.0.0.1
  testhost.py destroy NAME                  power NAME off and remove its files
  testhost.py reboot NAME                   power NAME off and boot it again
  testhost.py poweroff NAME                 power NAME off, keeping its files
  testhost.py run NAME -- CMD [ARGS...]     run CMD inside NAME as root
  testhost.py list                          print the test hosts (JSON)
  testhost.py standins                      build (once) the stand-in images, print their archives
  testhost.py appimage                      build (once per source) the app's production image
                                            in a test host of its own, print its archive (JSON)
  testhost.py lab-up LAB --subnet CIDR      make a private network with a registry (JSON)
  testhost.py lab-down LAB                  remove the lab, its hosts and its registry

State lives in $SENEX_TESTHOST_DIR (/var/lib/senex-testhost), caches in $SENEX_TESTHOST_CACHE
(/var/cache/senex-testhost). Must run as root.
"""

import argparse
import json
import sys

import hosts
import imagehost
import lab
import standins
from common import TesthostError, cache_dir, check_machine, locked


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="boot a test host")
    create.add_argument("name")
    create.add_argument("--ssh-port", type=int, required=True)
    create.add_argument("--lab", help="put the host on this lab's network (see lab-up)")
    create.add_argument("--address", help="the host's address on the lab, e.g. 10.213.3.10")
    create.add_argument(
        "--forward", type=_forward, action="append", default=[], metavar="LOCAL:REMOTE",
        help="also forward 127.0.0.1:LOCAL to the host's port REMOTE (lab hosts; repeatable)",
    )  # fmt: skip
    lab_up = commands.add_parser("lab-up", help="make a lab: a private network for test hosts")
    lab_up.add_argument("lab")
    lab_up.add_argument("--subnet", required=True, help="e.g. 10.213.3.0/24; the bridge gets .1")
    commands.add_parser("lab-down", help="remove a lab and its hosts").add_argument("lab")
    for name in ("destroy", "reboot", "poweroff"):
        commands.add_parser(name).add_argument("name")
    run = commands.add_parser("run", help="run a command inside a test host")
    run.add_argument("name")
    run.add_argument("cmd", nargs=argparse.REMAINDER)
    commands.add_parser("list")
    commands.add_parser("standins")
    commands.add_parser("appimage")
    args = parser.parse_args(argv)

    try:
        if args.command == "create":
            created = hosts.create(args.name, args.ssh_port, args.lab, args.address, args.forward)
            print(json.dumps(created))
        elif args.command == "lab-up":
            print(json.dumps(lab.up(args.lab, args.subnet)))
        elif args.command == "lab-down":
            print(json.dumps(hosts.lab_down(args.lab)))
        elif args.command == "destroy":
            print(json.dumps(hosts.destroy(args.name)))
        elif args.command == "reboot":
            print(json.dumps(hosts.reboot(args.name)))
        elif args.command == "poweroff":
            print(json.dumps(hosts.poweroff(args.name)))
        elif args.command == "run":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                parser.error("run needs a command: testhost.py run NAME -- CMD [ARGS...]")
            return hosts.run_command(args.name, cmd)
        elif args.command == "list":
            print(json.dumps(hosts.hosts(), indent=2))
        elif args.command == "standins":
            print(json.dumps(standins.build()))
        elif args.command == "appimage":
            check_machine()
            with locked("appimage"):
                try:
                    print(json.dumps(imagehost.app_image(cache_dir())))
                except RuntimeError as error:
                    raise TesthostError(str(error)) from None
    except TesthostError as error:
        print(f"testhost: {error}", file=sys.stderr)
        return 2
    return 0


def _forward(text: str) -> tuple[int, int]:
    local, _, remote = text.partition(":")
    if not (local.isdigit() and remote.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not LOCAL:REMOTE, e.g. 23443:443")
    return int(local), int(remote)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

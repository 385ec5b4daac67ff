"""A private image registry inside a lab: Debian's docker-registry with TLS and basic auth."""

import json
import secrets
from pathlib import Path

import daemons
from common import run

PORT = 5000
USERNAME = "senex"
CERT_DAYS = "3650"


class Registry:
    """The files of one lab's registry, under the lab's state directory."""

    def __init__(self, lab_dir: Path, netns_name: str, gateway: str) -> None:
        self.dir = lab_dir / "registry"
        self.netns = netns_name
        self.gateway = gateway
        self.ca_file = self.dir / "ca.crt"
        self.ca_key = self.dir / "ca.key"
        self.cert = self.dir / "registry.crt"
        self.key = self.dir / "registry.key"
        self.password_file = self.dir / "password"
        self.htpasswd = self.dir / "htpasswd"
        self.config = self.dir / "config.yml"
        self.storage = self.dir / "storage"
        self.pidfile = self.dir / "registry.pid"
        self.log = self.dir / "registry.log"

    @property
    def address(self) -> str:
        return f"{self.gateway}:{PORT}"

    def info(self) -> dict:
        return {
            "registry": self.address,
            "ca_file": str(self.ca_file),
            "username": USERNAME,
            "password_file": str(self.password_file),
        }

    def start(self) -> bool:
        """Make what is missing and start the registry unless it runs; True if anything changed."""
        if daemons.running(self.pidfile, str(self.config)):
            return False
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.storage.mkdir(exist_ok=True)
        if not self.cert.is_file():
            self._make_certificates()
        if not self.htpasswd.is_file():
            self._make_credentials()
        self.config.write_text(json.dumps(self._config(), indent=2) + "\n")
        argv = ["ip", "netns", "exec", self.netns, "docker-registry", "serve", str(self.config)]
        daemons.start(argv, self.pidfile, self.log)
        return True

    def stop(self) -> bool:
        return daemons.stop(self.pidfile, str(self.config))

    def _config(self) -> dict:
        # JSON is YAML: the registry reads it as its YAML configuration.
        return {
            "version": 0.1,
            "log": {"level": "warn"},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)}},
            "http": {
                "addr": self.address,
                "tls": {"certificate": str(self.cert), "key": str(self.key)},
            },
            "auth": {"htpasswd": {"realm": self.netns, "path": str(self.htpasswd)}},
        }

    def _make_certificates(self) -> None:
        """A CA of this lab's own and a server certificate for the registry's IP address."""
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run("openssl", "req", "-x509", *ec, "-keyout", self.ca_key, "-out", self.ca_file,
            "-days", CERT_DAYS, "-subj", f"/CN={self.netns} registry CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            capture_output=True, text=True)  # fmt: skip
        request = self.dir / "registry.csr"
        run("openssl", "req", "-new", *ec, "-keyout", self.key, "-out", request,
            "-subj", f"/CN={self.gateway}", capture_output=True, text=True)  # fmt: skip
        extensions = self.dir / "registry.ext"
        extensions.write_text(
            f"subjectAltName=IP:{self.gateway}\nextendedKeyUsage=serverAuth\n"
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        )
        run("openssl", "x509", "-req", "-in", request, "-CA", self.ca_file, "-CAkey", self.ca_key,
            "-CAcreateserial", "-days", CERT_DAYS, "-extfile", extensions, "-out", self.cert,
            capture_output=True, text=True)  # fmt: skip
        request.unlink()
        extensions.unlink()
        for key in (self.ca_key, self.key):
            key.chmod(0o600)

    def _make_credentials(self) -> None:
        """A random password in a file of its own, and its bcrypt hash for the registry."""
        password = secrets.token_urlsafe(24)
        self.password_file.touch(mode=0o600)
        self.password_file.write_text(password)
        # -i: the password comes on stdin, never on a command line other processes can read.
        run("htpasswd", "-B", "-i", "-c", self.htpasswd, USERNAME,
            input=password, capture_output=True, text=True)  # fmt: skip

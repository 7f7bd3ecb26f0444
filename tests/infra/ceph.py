"""A throwaway Ceph cluster with a RADOS Gateway: a real S3 endpoint on loopback.

One monitor, one OSD on `memstore` (objects live in RAM), no manager, no cephx; every
daemon runs in the foreground as a child whose PID we keep. Cold start to the first PUT
takes about 3 s. The gateway serves plain HTTP and, on a second port, HTTPS with a
certificate signed by a throwaway CA generated here (`CephCluster.ca_bundle`).

See `shared/test-infra.md` for the measured recipe and its traps (the `ms mon client
mode`, the paxos timings, the checksum settings RGW 16.2 needs).

Usage::

    cluster = CephCluster(Path("/tmp/ceph"))
    cluster.start()
    s3 = cluster.client()
    s3.create_bucket(Bucket="demo")
    ...
    cluster.stop()
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import secrets
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3.session
from botocore.config import Config

logger = logging.getLogger(__name__)

REGION = "us-east-1"
RGW_NAME = "client.rgw.test"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:port.

    Raises:
        RuntimeError: the port stayed closed for `timeout` seconds or `proc` exited.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def port_is_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """Write a throwaway CA and a server certificate for 127.0.0.1/localhost.

    Returns:
        (ca_certificate, server_certificate, server_private_key) paths, all PEM.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    one_day = datetime.timedelta(days=1)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "database-backup test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - one_day)
        .not_valid_after(now + 30 * one_day)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - one_day)
        .not_valid_after(now + 30 * one_day)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    directory.mkdir(parents=True, exist_ok=True)
    ca_path = directory / "ca.pem"
    cert_path = directory / "rgw.crt"
    key_path = directory / "rgw.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


@dataclass
class S3User:
    """An RGW user and its S3 key pair."""

    uid: str
    access_key: str
    secret_key: str


@dataclass
class CephCluster:
    """One mon + one memstore OSD + one RADOS Gateway, all under `datadir`.

    Attributes:
        datadir: where config, keyring, mon/osd data, logs and TLS files go.
        memstore_bytes: capacity of the in-RAM OSD.
        tls: also serve HTTPS on `https_port` with a throwaway CA.
    """

    datadir: Path
    memstore_bytes: int = 8 << 30
    tls: bool = True
    mon_port_v2: int = field(default_factory=free_port)
    mon_port_v1: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    region: str = REGION
    admin: S3User | None = None
    ca_bundle: Path | None = None
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _osd_id: str = ""

    # -- addresses -------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The plain HTTP S3 endpoint URL."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def tls_endpoint(self) -> str:
        """The HTTPS S3 endpoint URL (certificate valid for 127.0.0.1 and localhost)."""
        return f"https://localhost:{self.https_port}"

    @property
    def conf(self) -> Path:
        """Path of the generated ceph.conf."""
        return self.datadir / "ceph.conf"

    @property
    def access_key(self) -> str:
        """Access key of the admin S3 user created at start."""
        assert self.admin is not None, "cluster not started"
        return self.admin.access_key

    @property
    def secret_key(self) -> str:
        """Secret key of the admin S3 user created at start."""
        assert self.admin is not None, "cluster not started"
        return self.admin.secret_key

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Create the cluster, start mon, OSD and gateway, and create the admin user."""
        started = time.monotonic()
        self.datadir.mkdir(parents=True, exist_ok=True)
        for sub in ("run", "log", "mon", "osd", "rgw"):
            (self.datadir / sub).mkdir(exist_ok=True)
        if self.tls:
            self.ca_bundle, cert, key = make_tls_files(self.datadir / "tls")
        else:
            cert = key = None
        fsid = str(uuid.uuid4())
        self._write_conf(fsid, cert, key)

        keyring = self.datadir / "keyring"
        monmap = self.datadir / "monmap"
        self._run(
            "ceph-authtool", "--create-keyring", str(keyring), "--gen-key", "-n", "mon.",
            "--cap", "mon", "allow *",
        )  # fmt: skip
        self._run(
            "monmaptool", "--create", "--fsid", fsid, "--addv", "a",
            f"[v2:127.0.0.1:{self.mon_port_v2},v1:127.0.0.1:{self.mon_port_v1}]",
            str(monmap),
        )  # fmt: skip
        self._run(
            "ceph-mon", "-c", str(self.conf), "--mkfs", "-i", "a", "--monmap", str(monmap),
            "--keyring", str(keyring),
        )  # fmt: skip
        self._spawn("mon", "ceph-mon", "-c", str(self.conf), "-i", "a", "-f")
        wait_for_port(self.mon_port_v2, 20, self._procs["mon"])

        osd_uuid = str(uuid.uuid4())
        self._osd_id = self._ceph("osd", "new", osd_uuid).strip()
        (self.datadir / "osd" / f"ceph-{self._osd_id}").mkdir(exist_ok=True)
        self._run(
            "ceph-osd", "-c", str(self.conf), "-i", self._osd_id, "--mkfs",
            "--osd-uuid", osd_uuid,
        )  # fmt: skip
        self._spawn("osd", "ceph-osd", "-c", str(self.conf), "-i", self._osd_id, "-f")
        self._wait_osd_up(30)

        self.start_rgw()
        self.admin = self.create_user("admin")
        logger.info("ceph cluster up in %.1f s at %s", time.monotonic() - started, self.endpoint)

    def stop(self) -> None:
        """Stop the gateway, then the OSD, then the monitor (SIGKILL: it is throwaway)."""
        for name in ("rgw", "osd", "mon"):
            proc = self._procs.pop(name, None)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)

    def start_rgw(self, timeout: float = 30) -> None:
        """Start the RADOS Gateway and wait until it answers S3 requests."""
        proc = self._procs.get("rgw")
        if proc is not None and proc.poll() is None:
            return
        self._spawn("rgw", "radosgw", "-c", str(self.conf), "-n", RGW_NAME, "-f")
        wait_for_port(self.http_port, timeout, self._procs["rgw"])
        if self.tls:
            wait_for_port(self.https_port, timeout, self._procs["rgw"])

    def kill_rgw(self) -> None:
        """SIGKILL the gateway (the S3 endpoint dies mid-request; the cluster survives)."""
        proc = self._procs.pop("rgw", None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        deadline = time.monotonic() + 10
        while port_is_open(self.http_port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart_rgw(self, timeout: float = 30) -> None:
        """Start the gateway again after `kill_rgw` (no-op when it is running)."""
        self.start_rgw(timeout)

    @property
    def rgw_running(self) -> bool:
        """Whether the gateway process is alive."""
        proc = self._procs.get("rgw")
        return proc is not None and proc.poll() is None

    # -- users and clients -------------------------------------------------------------

    def create_user(self, uid: str) -> S3User:
        """Create an RGW user with a fresh random S3 key pair."""
        access_key = "AK" + secrets.token_hex(9).upper()
        secret_key = secrets.token_urlsafe(30)
        self._run(
            "radosgw-admin", "-c", str(self.conf), "-n", RGW_NAME, "user", "create",
            f"--uid={uid}", f"--display-name={uid}", f"--access-key={access_key}",
            f"--secret={secret_key}",
        )  # fmt: skip
        return S3User(uid=uid, access_key=access_key, secret_key=secret_key)

    def client(
        self,
        user: S3User | None = None,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        tls: bool = False,
    ) -> Any:
        """A plain boto3 S3 client for this gateway (path style, RGW-safe checksums)."""
        user = user or self.admin
        assert user is not None, "cluster not started"
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.tls_endpoint if tls else self.endpoint,
            region_name=self.region,
            aws_access_key_id=access_key or user.access_key,
            aws_secret_access_key=secret_key or user.secret_key,
            verify=str(self.ca_bundle) if tls else None,
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def admin_json(self, *args: str) -> Any:
        """Run `radosgw-admin ARGS` and return its parsed JSON output."""
        out = self._run("radosgw-admin", "-c", str(self.conf), "-n", RGW_NAME, *args)
        return json.loads(out) if out.strip() else None

    # -- internals -------------------------------------------------------------------

    def _write_conf(self, fsid: str, cert: Path | None, key: Path | None) -> None:
        d = self.datadir
        frontend = f"beast endpoint=127.0.0.1:{self.http_port}"
        if cert is not None and key is not None:
            frontend += (
                f" ssl_endpoint=127.0.0.1:{self.https_port}"
                f" ssl_certificate={cert} ssl_private_key={key}"
            )
        self.conf.write_text(
            f"""[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{self.mon_port_v2},v1:127.0.0.1:{self.mon_port_v1}]
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
ms bind ipv6 = false
run dir = {d}/run
admin socket = {d}/run/$cluster-$name.asok
pid file = {d}/run/$cluster-$name.pid
log file = {d}/log/$cluster-$name.log
keyring = {d}/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0

[mon]
mon data = {d}/mon/$cluster-$id
paxos propose interval = 0.01
paxos min wait = 0.001

[osd]
osd data = {d}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = {self.memstore_bytes}

[{RGW_NAME}]
rgw frontends = {frontend}
rgw data = {d}/rgw
rgw enable usage log = false
rgw gc obj min wait = 5
rgw gc processor period = 5
"""
        )

    def _run(self, *argv: str) -> str:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise RuntimeError(
                f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout}"
            )
        return proc.stdout

    def _ceph(self, *args: str) -> str:
        return self._run("ceph", "-c", str(self.conf), "--connect-timeout", "20", *args)

    def _spawn(self, name: str, *argv: str) -> None:
        log = (self.datadir / "log" / f"{name}.out").open("ab")
        self._procs[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()

    def _wait_osd_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self._procs["osd"]
            if proc.poll() is not None:
                raise RuntimeError(f"ceph-osd exited with {proc.returncode}")
            stat = json.loads(self._ceph("osd", "stat", "-f", "json"))
            if stat.get("num_up_osds", 0) >= 1:
                return
            time.sleep(0.1)
        raise RuntimeError(f"the OSD is not up after {timeout} s")

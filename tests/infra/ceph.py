"""A throwaway Ceph cluster with a RADOS Gateway: a real S3 endpoint on loopback.

One monitor, one OSD on `memstore` (objects live in RAM), no manager, no cephx; every
daemon runs in the foreground as a child whose PID we keep. Cold start to the first PUT
takes about a second. The gateway serves plain HTTP and, on a second port, HTTPS with a
certificate signed by a throwaway CA generated here (`CephS3.ca_bundle`, when `tls=True`).

See `shared/test-infra.md` for the measured recipe and its traps (the `ms mon client
mode`, the paxos timings, the checksum settings RGW 16.2 needs).

Usage::

    ceph = CephS3(Path("/tmp/ceph"), free_port(), tls=True)
    ceph.start()
    ceph.create_bucket("demo")
    storage = S3Storage(ceph.s3_config("demo"))
    ...
    ceph.stop()
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import logging
import secrets
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import boto3.session
from botocore.config import Config

from tests.infra.net import free_port, port_is_open, wait_for_port

if TYPE_CHECKING:
    from database_backup.storage import S3Config

logger = logging.getLogger(__name__)

REGION = "us-east-1"
RGW_NAME = "client.rgw.test"

_SESSION = boto3.session.Session()
_SESSION_LOCK = threading.Lock()


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


class S3User(NamedTuple):
    """An S3 key pair of an RGW user."""

    access_key: str
    secret_key: str


@dataclass
class CephS3:
    """One mon + one memstore OSD + one RADOS Gateway, all under `base_dir`.

    Attributes:
        base_dir: where config, keyring, mon/OSD data, logs and TLS files go.
        rgw_port: the gateway's plain HTTP port on 127.0.0.1.
        mon_ports: the monitor's (msgr v2, msgr v1) ports.
        tls: also serve HTTPS on `https_port`, certificate signed by a throwaway CA
            (`ca_bundle`).
        https_port: the gateway's HTTPS port (used when `tls`).
        memstore_bytes: capacity of the in-RAM OSD.
        region: the region name clients sign with.
    """

    base_dir: Path
    rgw_port: int = field(default_factory=free_port)
    mon_ports: tuple[int, int] = field(default_factory=lambda: (free_port(), free_port()))
    tls: bool = False
    https_port: int = field(default_factory=free_port)
    memstore_bytes: int = 8 << 30
    region: str = REGION
    admin: S3User | None = field(default=None, init=False, repr=False)
    ca_bundle: Path | None = field(default=None, init=False)
    _procs: dict[str, subprocess.Popen[bytes]] = field(
        default_factory=dict, init=False, repr=False
    )
    _osd_id: str = field(default="", init=False)

    # -- addresses -------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The plain HTTP S3 endpoint URL."""
        return f"http://127.0.0.1:{self.rgw_port}"

    @property
    def tls_endpoint(self) -> str:
        """The HTTPS S3 endpoint URL (certificate valid for 127.0.0.1 and localhost)."""
        return f"https://localhost:{self.https_port}"

    @property
    def conf(self) -> Path:
        """Path of the generated ceph.conf."""
        return self.base_dir / "ceph.conf"

    @property
    def access_key(self) -> str:
        """Access key of the admin S3 user created at start."""
        return self._admin().access_key

    @property
    def secret_key(self) -> str:
        """Secret key of the admin S3 user created at start."""
        return self._admin().secret_key

    # -- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        """Create the cluster, start mon, OSD and gateway, and create the admin user."""
        started = time.monotonic()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("run", "log", "mon", "osd", "rgw"):
            (self.base_dir / sub).mkdir(exist_ok=True)
        if self.tls:
            self.ca_bundle, cert, key = make_tls_files(self.base_dir / "tls")
        else:
            cert = key = None
        fsid = str(uuid.uuid4())
        self._write_conf(fsid, cert, key)

        keyring = self.base_dir / "keyring"
        monmap = self.base_dir / "monmap"
        self._run(
            "ceph-authtool", "--create-keyring", str(keyring), "--gen-key", "-n", "mon.",
            "--cap", "mon", "allow *",
        )  # fmt: skip
        self._run(
            "monmaptool", "--create", "--fsid", fsid, "--addv", "a",
            f"[v2:127.0.0.1:{self.mon_ports[0]},v1:127.0.0.1:{self.mon_ports[1]}]",
            str(monmap),
        )  # fmt: skip
        self._run(
            "ceph-mon", "-c", str(self.conf), "--mkfs", "-i", "a", "--monmap", str(monmap),
            "--keyring", str(keyring),
        )  # fmt: skip
        self._spawn("mon", "ceph-mon", "-c", str(self.conf), "-i", "a", "-f")
        wait_for_port(self.mon_ports[0], timeout, self._procs["mon"])

        osd_uuid = str(uuid.uuid4())
        self._osd_id = self._ceph("osd", "new", osd_uuid).strip()
        (self.base_dir / "osd" / f"ceph-{self._osd_id}").mkdir(exist_ok=True)
        self._run(
            "ceph-osd", "-c", str(self.conf), "-i", self._osd_id, "--mkfs",
            "--osd-uuid", osd_uuid,
        )  # fmt: skip
        self._spawn("osd", "ceph-osd", "-c", str(self.conf), "-i", self._osd_id, "-f")
        self._wait_osd_up(timeout)

        self.start_rgw(timeout)
        self.admin = self.create_user("admin")
        logger.info("ceph cluster up in %.1f s at %s", time.monotonic() - started, self.endpoint)

    def stop(self) -> None:
        """Stop the gateway, then the OSD, then the monitor (SIGKILL: it is throwaway)."""
        for name in ("rgw", "osd", "mon"):
            proc = self._procs.pop(name, None)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)

    def is_running(self) -> bool:
        """Whether mon, OSD and gateway are all alive."""
        return all(
            name in self._procs and self._procs[name].poll() is None
            for name in ("mon", "osd", "rgw")
        )

    def start_rgw(self, timeout: float = 30) -> None:
        """Start the RADOS Gateway and wait until it answers S3 requests."""
        proc = self._procs.get("rgw")
        if proc is not None and proc.poll() is None:
            return
        self._spawn("rgw", "radosgw", "-c", str(self.conf), "-n", RGW_NAME, "-f")
        wait_for_port(self.rgw_port, timeout, self._procs["rgw"])
        if self.tls:
            wait_for_port(self.https_port, timeout, self._procs["rgw"])

    def kill_rgw(self) -> None:
        """SIGKILL the gateway (the S3 endpoint dies mid-request; the cluster survives)."""
        proc = self._procs.pop("rgw", None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        deadline = time.monotonic() + 10
        while port_is_open(self.rgw_port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart_rgw(self, timeout: float = 30) -> None:
        """Start the gateway again after `kill_rgw` (no-op when it is running)."""
        self.start_rgw(timeout)

    @property
    def rgw_running(self) -> bool:
        """Whether the gateway process is alive."""
        proc = self._procs.get("rgw")
        return proc is not None and proc.poll() is None

    # -- users, buckets and clients ------------------------------------------------

    def create_user(self, uid: str) -> S3User:
        """Create an RGW user with a fresh random key pair; return (access_key, secret_key)."""
        access_key = "AK" + secrets.token_hex(9).upper()
        secret_key = secrets.token_urlsafe(30)
        self._run(
            "radosgw-admin", "-c", str(self.conf), "-n", RGW_NAME, "user", "create",
            f"--uid={uid}", f"--display-name={uid}", f"--access-key={access_key}",
            f"--secret={secret_key}",
        )  # fmt: skip
        return S3User(access_key, secret_key)

    def client(self, user: S3User | tuple[str, str] | None = None, *, tls: bool = False) -> Any:
        """A plain boto3 S3 client for this gateway (path style, RGW-safe checksums).

        Args:
            user: (access_key, secret_key); the admin user by default.
            tls: talk HTTPS to `tls_endpoint`, trusting `ca_bundle`.
        """
        access_key, secret_key = user or self._admin()
        with _SESSION_LOCK:  # one session: a new one costs ~100 ms, a client from it ~3 ms
            return _SESSION.client(
                "s3",
                endpoint_url=self.tls_endpoint if tls else self.endpoint,
                region_name=self.region,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
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

    def create_bucket(self, name: str, user: S3User | tuple[str, str] | None = None) -> None:
        """Create a bucket owned by `user` (the admin user by default)."""
        self.client(user).create_bucket(Bucket=name)

    def s3_config(
        self,
        bucket: str,
        path: str = "",
        *,
        user: S3User | tuple[str, str] | None = None,
        tls: bool = False,
    ) -> S3Config:
        """The `database_backup.storage.S3Config` that reaches `bucket` on this gateway.

        Args:
            bucket: the bucket name.
            path: prefix inside the bucket.
            user: (access_key, secret_key); the admin user by default.
            tls: use the HTTPS endpoint with the throwaway CA as `tls_ca_chain`.
        """
        from database_backup.storage import S3Config

        access_key, secret_key = user or self._admin()
        ca_chain = None
        if tls:
            assert self.ca_bundle is not None, "this gateway was started without tls=True"
            ca_chain = self.ca_bundle.read_text()
        return S3Config(
            bucket=bucket,
            access_key=access_key,
            secret_key=secret_key,
            endpoint=self.tls_endpoint if tls else self.endpoint,
            region=self.region,
            path=path,
            uri_style="path",
            tls_ca_chain=ca_chain,
        )

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key in `bucket` under `prefix`, read with the admin user."""
        keys: list[str] = []
        for page in (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        ):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def multipart_uploads(self, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
        """Multipart uploads still open in `bucket` under `prefix`."""
        resp = self.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix)
        return resp.get("Uploads", [])

    def remove_bucket(self, bucket: str, user: S3User | tuple[str, str] | None = None) -> None:
        """Abort open multipart uploads, delete every object, then delete the bucket."""
        client = self.client(user)
        for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objects = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if objects:
                client.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        client.delete_bucket(Bucket=bucket)

    def _admin(self) -> S3User:
        assert self.admin is not None, "the gateway is not started"
        return self.admin

    def admin_json(self, *args: str) -> Any:
        """Run `radosgw-admin ARGS` and return its parsed JSON output."""
        out = self._run("radosgw-admin", "-c", str(self.conf), "-n", RGW_NAME, *args)
        return json.loads(out) if out.strip() else None

    # -- internals -------------------------------------------------------------------

    def _write_conf(self, fsid: str, cert: Path | None, key: Path | None) -> None:
        d = self.base_dir
        frontend = f"beast tcp_nodelay=1 endpoint=127.0.0.1:{self.rgw_port}"
        if cert is not None and key is not None:
            frontend += (
                f" ssl_endpoint=127.0.0.1:{self.https_port}"
                f" ssl_certificate={cert} ssl_private_key={key}"
            )
        self.conf.write_text(
            f"""[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{self.mon_ports[0]},v1:127.0.0.1:{self.mon_ports[1]}]
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
# a killed radosgw's watches expire fast, else the next one's notifies wait 30 s
osd client watch timeout = 3
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
        log = (self.base_dir / "log" / f"{name}.out").open("ab")
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

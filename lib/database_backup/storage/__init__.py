"""S3 access for backups: streaming multipart upload, streaming download, copy, listing.

Code that stores or reads backups depends on the `ObjectStore` protocol; `S3Storage`
implements it. Importing this package is cheap: the AWS SDK (botocore) is imported
by `storage.client` when the first `S3Storage` is created, so import these names at the
top of a module, never inside a function.

Built on botocore (boto3's core), tuned for S3-compatible servers (Ceph RGW, MinIO) as well as AWS:
path or virtual-host addressing, a private CA bundle for TLS, "standard" retries plus our
own retry of a failed part, checksums only where the API requires them (integrity is
checked end to end with our own SHA-256 and per-part Content-MD5).

Example::

    import io
    from database_backup.storage import S3Config, S3Storage, StorageError

    config = S3Config(
        bucket="backups",
        access_key=access_key,
        secret_key=secret_key,
        endpoint="https://rgw.example.com",
        path="cluster-a",
        tls_ca_chain=ca_pem,
    )
    with S3Storage(config, max_concurrency=4) as storage:
        storage.check()                          # AccessDeniedError, BucketNotFoundError...
        result = storage.upload_stream("backups/1/data", pipe, size_hint=estimated)
        for info in storage.list("backups/"):
            print(info.key, info.size)
        with storage.open_stream("backups/1/data") as reader:
            chunk = reader.read(1 << 20)
        storage.cleanup_incomplete_uploads("backups/")   # after a crash or a dead endpoint
"""

from database_backup.storage.client import RetryPolicy, botocore_config
from database_backup.storage.config import S3Config
from database_backup.storage.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    ObjectNotFoundError,
    StorageError,
    UploadAbortedError,
)
from database_backup.storage.parts import PartPlan, choose_part_size, plan_parts
from database_backup.storage.protocol import ObjectInfo, ObjectStore, Readable, UploadResult
from database_backup.storage.storage import S3Storage, copy_object

__all__ = [
    "AccessDeniedError",
    "BucketNotFoundError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectStore",
    "PartPlan",
    "Readable",
    "RetryPolicy",
    "S3Config",
    "S3Storage",
    "StorageError",
    "UploadAbortedError",
    "UploadResult",
    "botocore_config",
    "choose_part_size",
    "copy_object",
    "plan_parts",
]

"""S3 access for backups: streaming multipart upload, download, copy, listing.

Placeholder while the implementation lands; the public names are in place.
"""

from database_backup.storage.config import S3Config
from database_backup.storage.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    ObjectNotFoundError,
    StorageError,
    UploadAbortedError,
)

__all__ = [
    "AccessDeniedError",
    "BucketNotFoundError",
    "ObjectNotFoundError",
    "S3Config",
    "StorageError",
    "UploadAbortedError",
]

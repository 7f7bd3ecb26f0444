"""The published draft's rules for `database_backup` v0, as a schema of their own.

Kept apart from our schemas on purpose: what our requirer and provider write must pass
these (the draft's) rules too, so a draft-only peer can read it. From the draft: a
top-level `jobs` key; each job has the five request fields; `job-config` is closed
(compression only); extra keys are allowed on a job; `status` is running|success|error.
"""

from __future__ import annotations

JOB_CONFIG = {
    "type": "object",
    "properties": {"compression": {"type": "boolean"}},
    "additionalProperties": False,
}

DRAFT_REQUEST = {
    "type": "object",
    "properties": {
        "job-id": {"type": "string"},
        "job-type": {"enum": ["backup", "restore"]},
        "job-config": JOB_CONFIG,
        "storage-interface": {"type": "string"},
        "storage-config": {"type": "object"},
        "artefact-path": {"type": "string"},
    },
    "required": ["job-id", "job-type", "job-config", "storage-interface", "storage-config"],
    "additionalProperties": True,
}

DRAFT_STATUS = {
    "type": "object",
    "properties": {
        "job-id": {"type": "string"},
        "job-type": {"enum": ["backup", "restore"]},
        "job-config": JOB_CONFIG,
        "status": {"enum": ["running", "success", "error"]},
        "message": {"type": "string"},
        "artefact-path": {"type": "string"},
    },
    "required": ["job-id", "status"],
    "additionalProperties": True,
}

DRAFT_REQUIRER_DATABAG = {
    "type": "object",
    "properties": {"jobs": {"type": "array", "items": DRAFT_REQUEST}},
    "required": ["jobs"],
}

DRAFT_PROVIDER_DATABAG = {
    "type": "object",
    "properties": {"jobs": {"type": "array", "items": DRAFT_STATUS}},
    "required": ["jobs"],
}

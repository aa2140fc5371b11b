"""The JSON schemas glanceclient downloads (and validates requests against) before it acts."""

from __future__ import annotations

from typing import Any

from dockyard.image.images import CONTAINER_FORMATS, DISK_FORMATS, STATUSES, VISIBILITIES


def _ro(kind: Any, description: str) -> dict[str, Any]:
    return {"type": kind, "readOnly": True, "description": description}


def image_schema() -> dict[str, Any]:
    return {
        "name": "image",
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
        "properties": {
            "id": {
                "type": "string",
                "description": "An identifier for the image",
                "pattern": (
                    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}"
                    "-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
                ),
            },
            "name": {
                "type": ["null", "string"],
                "maxLength": 255,
                "description": "Descriptive name for the image",
            },
            "status": {
                "type": "string",
                "readOnly": True,
                "enum": STATUSES,
                "description": "Status of the image",
            },
            "visibility": {
                "type": "string",
                "enum": VISIBILITIES,
                "description": "Scope of image accessibility",
            },
            "protected": {
                "type": "boolean",
                "description": "If true, image will not be deletable.",
            },
            "os_hidden": {
                "type": "boolean",
                "description": "If true, image will not appear in default image list response.",
            },
            "checksum": {
                "type": ["null", "string"],
                "readOnly": True,
                "maxLength": 32,
                "description": "md5 hash of image contents.",
            },
            "os_hash_algo": {
                "type": ["null", "string"],
                "readOnly": True,
                "maxLength": 64,
                "description": "Algorithm to calculate the os_hash_value",
            },
            "os_hash_value": {
                "type": ["null", "string"],
                "readOnly": True,
                "maxLength": 128,
                "description": "Hexdigest of the image contents using os_hash_algo.",
            },
            "owner": {
                "type": ["null", "string"],
                "maxLength": 255,
                "description": "Owner of the image",
            },
            "size": _ro(["null", "integer"], "Size of image file in bytes"),
            "virtual_size": _ro(["null", "integer"], "Virtual size of image in bytes"),
            "min_ram": {
                "type": "integer",
                "description": "Amount of ram (in MB) required to boot image.",
            },
            "min_disk": {
                "type": "integer",
                "description": "Amount of disk space (in GB) required to boot image.",
            },
            "container_format": {
                "type": ["null", "string"],
                "enum": [None, *CONTAINER_FORMATS],
                "description": "Format of the container ('docker': a docker save archive)",
            },
            "disk_format": {
                "type": ["null", "string"],
                "enum": [None, *DISK_FORMATS],
                "description": "Format of the disk",
            },
            "tags": {
                "type": "array",
                "items": {"type": "string", "maxLength": 255},
                "description": "List of strings related to the image",
            },
            "created_at": _ro("string", "Date and time of image registration"),
            "updated_at": _ro("string", "Date and time of the last image modification"),
            "self": _ro("string", "An image self url"),
            "file": _ro("string", "An image file url"),
            "schema": _ro("string", "An image schema url"),
            "direct_url": _ro("string", "URL to access the image file kept in external store"),
            "locations": {
                "type": "array",
                "items": {"type": "object"},
                "description": "A set of URLs to access the image file kept in external store",
            },
            "docker_image": {
                "type": "string",
                "description": (
                    "dockyard: a registry reference Docker hosts pull when the image has no data"
                ),
            },
            "docker_repo_tags": _ro("string", "dockyard: RepoTags of the uploaded archive"),
            "docker_config_digest": _ro(
                "string", "dockyard: config digest (Docker image id) of the uploaded archive"
            ),
            "docker_archive_format": _ro(
                "string", "dockyard: docker-save or oci-layout, from the uploaded archive"
            ),
        },
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "created_at": {
                "type": "string",
                "description": "Date and time of image member creation",
            },
            "image_id": {"type": "string", "description": "An identifier for the image"},
            "member_id": {"type": "string", "description": "An identifier for the image member"},
            "schema": {"type": "string", "readOnly": True},
            "status": {
                "type": "string",
                "enum": ["pending", "accepted", "rejected"],
                "description": "The status of this image member",
            },
            "updated_at": {"type": "string", "description": "Date and time of last modification"},
        },
    }


def members_schema() -> dict[str, Any]:
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "schema", "href": "{schema}"}],
    }

"""S3's data plane across restarts: every version and delete marker of every object, exactly as it was.

Saved per bucket, in order, each version's own attributes (version id, ETag, last-modified,
metadata, storage class, ACL, checksums, lock settings) and the object tags moto keeps by the
version's ARN, so ``ListObjectVersions``, ``If-Match`` and ``?versionId=`` answer after a restart as
before. Bodies are not in the pickle: each goes once to a content-addressed blob
(:func:`longrun.local.state.files.put_blob`), and the version remembers its digest, so a save costs
the objects written since the last one, not the bucket's size. Not kept: multipart uploads still in
progress (their parts; S3 would keep them, a client restarts them) and a finished object's part
layout (``GetObject?partNumber``).

The buckets themselves are the template's, made anew at each start; a bucket it no longer
declares is not recreated (its objects are dropped, with a log line).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from typing import Any

from longrun.local.state import backends, files

SERVICE = "s3"
log = logging.getLogger("longrun.local.state")
_BLOB = "_longrun_blob"  # on moto's FakeKey: the digest of its body, once stored (a FakeKey's body never changes)
_NOT_SAVED = ("_value_buffer", "lock", "multipart")


def _backends() -> Any:
    from moto.s3.models import s3_backends

    return s3_backends


def _key_state(key: Any) -> dict[str, Any]:
    digest = key.__dict__.get(_BLOB)
    if digest is None:
        digest = key.__dict__[_BLOB] = files.put_blob(key.value)
    return {k: v for k, v in key.__dict__.items() if k not in _NOT_SAVED}


def _version(entry: Any) -> tuple[str, dict[str, Any]]:
    from moto.s3.models import FakeDeleteMarker

    if isinstance(entry, FakeDeleteMarker):
        marker = {k: v for k, v in entry.__dict__.items() if k != "key"}
        return "marker", {"marker": marker, "key": _key_state(entry.key)}
    return "key", _key_state(entry)


def dump() -> dict[tuple[str, str], dict[str, Any]]:
    from moto.s3.models import FakeKey

    out = {}
    for where, backend in backends.existing(_backends()):
        buckets = {}
        for name, bucket in backend.buckets.items():
            objects, tags = {}, {}
            for key, versions in bucket.keys.lists():
                objects[key] = [_version(v) for v in versions]
                for v in versions:
                    found = backend.tagger.tags.get(v.arn) if isinstance(v, FakeKey) else None
                    if found:  # object tags live in the backend's tagger, by the version's ARN
                        tags[v.arn] = dict(found)
            buckets[name] = {"objects": objects, "tags": tags}
        out[where] = buckets
    return out


def saved(data: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Once the snapshot is on disk, drop the blobs no saved version names (deleted objects' bodies)."""
    files.collect_blobs(_digests(data))


def _digests(data: dict[tuple[str, str], dict[str, Any]]) -> set[str]:
    found = set()
    for buckets in data.values():
        for bucket in buckets.values():
            for versions in bucket["objects"].values():
                for kind, state in versions:
                    found.add((state["key"] if kind == "marker" else state)[_BLOB])
    return found


def _key(state: dict[str, Any]) -> Any:
    from moto.s3.models import FakeKey

    key = FakeKey.__new__(FakeKey)
    key.__dict__.update(state)
    key.multipart = None
    key._value_buffer = tempfile.SpooledTemporaryFile(max_size=key._max_buffer_size)  # noqa: SIM115 - the key owns it
    key._value_buffer.write(files.get_blob(state[_BLOB]))
    key.lock = threading.Lock()
    return key


def _entry(kind: str, state: dict[str, Any]) -> Any:
    from moto.s3.models import FakeDeleteMarker

    if kind == "key":
        return _key(state)
    marker = FakeDeleteMarker.__new__(FakeDeleteMarker)
    marker.__dict__.update(state["marker"])
    marker.key = _key(state["key"])
    return marker


def restore(data: dict[tuple[str, str], dict[str, Any]]) -> None:
    from moto.s3.utils import _VersionedKeyStore

    for where, buckets in data.items():
        backend = backends.get(_backends(), where)
        for name, saved_bucket in buckets.items():
            bucket = backend.buckets.get(name)
            if bucket is None:
                log.warning("state: bucket %s is no longer in the stack; its saved objects are dropped", name)
                continue
            store = _VersionedKeyStore()
            for key, versions in saved_bucket["objects"].items():
                store.setlist(key, [_entry(kind, state) for kind, state in versions])
            bucket.keys = store
            backend.tagger.tags.update({arn: dict(tags) for arn, tags in saved_bucket["tags"].items()})

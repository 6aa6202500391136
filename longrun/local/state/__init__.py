"""The local cloud's data across restarts: moto's own objects, saved per service under ``<data-dir>/state``.

* :mod:`.format` — the versioned on-disk format, and the refusal of a data dir another version wrote;
* :mod:`.lock` — one cloud per data dir;
* :mod:`.registry` — the per-service adapters (``longrun/local/<service>/persistence.py``);
* :mod:`.keeper` — the snapshot loop inside each moto process, its readers/writer gate, its final save;
* :mod:`.files` — atomic writes and the content-addressed blobs that keep S3 saves cheap;
* :mod:`.clear` — ``--fresh`` and ``longrun local reset``.

docs/local-cloud.md#keeping-data-across-restarts says what is kept, the crash bound, and why this
mechanism rather than snapshots through the AWS APIs.
"""

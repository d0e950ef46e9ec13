"""The S3-compatible endpoint: SigV4, S3 XML, listings and the mapping of buckets and objects
onto Veil folders (docs/specs/s3.md). Sans-I/O modules (``sigv4``, ``chunked``, ``checksums``,
``xmlio``, ``listing``, ``etag``, ``errors``) import only the standard library, defusedxml, crc32c
and ``veil.errors``; ``store``, ``app`` and ``server`` drive ``veil.client`` and ``veil.net``."""

"""The MISP server-sync API under ``/misp``: a CSIRT's MISP adds the hub as a remote server
(pull and push) and PyMISP uses it as its base URL; TLP is enforced per partner through the
release path, which MISP itself cannot do. Protocol notes: reference/misp-sync.md."""

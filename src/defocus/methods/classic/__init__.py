"""Classic hand-crafted blur detectors of the papers' tables.

``REGISTRY`` maps registry names to ``"module:Class"``; it is read by
:mod:`defocus.methods.registry`.
"""

REGISTRY: dict[str, str] = {}

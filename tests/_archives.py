"""Archives built in memory for the download tests (served on 127.0.0.1)."""

from __future__ import annotations

import io
import zipfile


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A zip archive holding ``members`` (name -> content), as bytes."""
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return bio.getvalue()

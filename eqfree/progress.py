"""Progress bars on long work: shown when asked, hidden when asked, and by default shown only when
standard error is a terminal (so logs and test runs stay clean)."""

from __future__ import annotations

from tqdm.auto import tqdm


def progress_bar(progress: bool | None, **options) -> tqdm:
    """A ``tqdm`` bar with ``options``: shown for ``progress=True``, hidden for ``False``, and for ``None``
    shown only on a terminal (tqdm's ``disable=None``)."""
    return tqdm(disable=None if progress is None else not progress, **options)

"""The sentiment classes and label maps, without torch (the web process validates with them)."""

LABELS = ("negative", "neutral", "positive")
DEFAULT_LABEL_MAP = {"0": "negative", "1": "positive", "2": "neutral"}  # Twitter Financial News Sentiment


class DatasetError(ValueError):
    """A CSV or label map that cannot be used: a missing column, an unknown label, no rows."""


def label_map_parse(text: str) -> dict[str, str]:
    """``"0=negative,1=positive,2=neutral"`` -> {"0": "negative", ...}; values must be our labels."""
    mapping = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        raw, sep, label = part.partition("=")
        if not sep or not raw.strip() or label.strip().lower() not in LABELS:
            raise DatasetError(f"label map entry {part.strip()!r} must be VALUE=LABEL with LABEL one of {', '.join(LABELS)}")
        mapping[raw.strip()] = label.strip().lower()
    if not mapping:
        raise DatasetError("the label map is empty")
    return mapping

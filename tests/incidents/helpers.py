import json

from incidents.importing import ImportSummary, import_document


def doc_bytes(doc: dict) -> bytes:
    return json.dumps(doc, indent=2).encode()


def import_doc(doc: dict | bytes, **kwargs) -> ImportSummary:
    raw = doc if isinstance(doc, bytes) else doc_bytes(doc)
    kwargs.setdefault("source", "test")
    return import_document(raw=raw, **kwargs)


def error_paths(summary: ImportSummary) -> list[str]:
    return [e.path for e in summary.errors]

"""The search index: ``python -m knowledge_base build``.

Every guidance entry contributes documents to a FAISS index: its title and
each question variant (embedded as queries, e5's symmetric setting) and its
answer split into passages (embedded as passages). Exact inner product
(``IndexFlatIP``) by default; ``--index ivf|hnsw`` picks an approximate index
for large collections. The vectors are cached under ``var/kb/<key>/`` where
the key hashes the guidance content, the model and the index type; an
unchanged knowledge base is loaded, never re-embedded.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from knowledge_base import GUIDANCE_DIR, PACKAGE_DIR
from knowledge_base.entries import Entry, content_fingerprint, load_entries
from knowledge_base.lexical import BM25, tokenize

INDEX_TYPES = ("flat", "ivf", "hnsw")
INDEX_FORMAT = 2
DEFAULT_CACHE_DIR = Path(os.environ.get("KB_CACHE_DIR", str(PACKAGE_DIR.parent / "var" / "kb")))
PASSAGE_CHARS = {"zh": 160, "en": 600}


@dataclass(frozen=True)
class Doc:
    entry: int  # index into KBIndex.entries
    kind: str  # title | question | answer
    text: str


def split_answer(answer: str, language: str) -> list[str]:
    """Answer -> passages of whole lines, each at most ~PASSAGE_CHARS long."""
    limit = PASSAGE_CHARS.get(language, 400)
    lines = [ln.strip().lstrip("-•* ").strip() for ln in answer.splitlines()]
    passages: list[str] = []
    current = ""
    for line in filter(None, lines):
        if current and len(current) + len(line) + 1 > limit:
            passages.append(current)
            current = line
        else:
            current = f"{current} {line}".strip() if current else line
    if current:
        passages.append(current)
    return passages


def entry_documents(entries: Sequence[Entry]) -> list[Doc]:
    docs: list[Doc] = []
    for i, e in enumerate(entries):
        docs.append(Doc(i, "title", e.title))
        docs.extend(Doc(i, "question", q) for q in e.questions)
        docs.extend(Doc(i, "answer", f"{e.title}: {p}") for p in split_answer(e.answer, e.language))
    return docs


def lexical_text(entry: Entry) -> str:
    """What BM25 sees for one entry: title twice, the question variants and the answer."""
    return "\n".join([entry.title, entry.title, *entry.questions, entry.answer])


def cache_key(fingerprint: str, model_identity: str) -> str:
    """Cache folder name: changes with the guidance content, the model and the cache format."""
    digest = hashlib.sha256(f"{INDEX_FORMAT}\0{fingerprint}\0{model_identity}".encode())
    return digest.hexdigest()[:20]


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file and rename, so a crash never leaves a half file."""
    tmp = path.with_name(path.name + ".tmp" + path.suffix)
    write(tmp)
    os.replace(tmp, path)


def make_faiss_index(vectors: np.ndarray, index_type: str = "flat"):
    """A FAISS inner-product index over unit ``vectors``."""
    import faiss

    n, dim = vectors.shape
    if index_type == "flat":
        index = faiss.IndexFlatIP(dim)
    elif index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
    elif index_type == "ivf":
        nlist = max(1, min(int(math.sqrt(n)), n // 39 or 1))
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(nlist, 8)
    else:
        raise ValueError(f"unknown index type {index_type!r} (one of {', '.join(INDEX_TYPES)})")
    index.add(vectors)
    return index


@dataclass
class KBIndex:
    entries: list[Entry]
    docs: list[Doc]
    faiss_index: object
    doc_entry: np.ndarray
    doc_is_answer: np.ndarray
    bm25: BM25
    key: str
    index_type: str
    model_identity: str

    @property
    def size(self) -> int:
        return len(self.docs)


def embed_documents(docs: Sequence[Doc], embedder, batch_size: int = 32, progress: bool = True) -> np.ndarray:
    """Vectors for ``docs`` in order, batched, with a tqdm progress bar."""
    from tqdm import tqdm

    out = np.zeros((len(docs), embedder.dim), dtype=np.float32)
    order = sorted(range(len(docs)), key=lambda i: (docs[i].kind == "answer", len(docs[i].text)))
    bar = tqdm(total=len(docs), desc="embedding guidance", unit="doc", disable=not progress, file=sys.stderr)
    for start in range(0, len(order), batch_size):
        chunk = order[start: start + batch_size]
        queries = [i for i in chunk if docs[i].kind != "answer"]
        passages = [i for i in chunk if docs[i].kind == "answer"]
        if queries:
            out[queries] = embedder.encode_queries([docs[i].text for i in queries], batch_size=batch_size)
        if passages:
            out[passages] = embedder.encode_passages([docs[i].text for i in passages], batch_size=batch_size)
        bar.update(len(chunk))
    bar.close()
    return out


def build_index(
    embedder,
    guidance_dir: Path = GUIDANCE_DIR,
    index_type: str = "flat",
    cache_dir: Path = DEFAULT_CACHE_DIR,
    rebuild: bool = False,
    progress: bool = True,
) -> tuple[KBIndex, bool]:
    """Load the cached index for this content + model, or build and cache it. Returns (index, built_now).

    ``var/kb/<key>/`` holds the document vectors (``vectors.npy``, the slow part)
    and one ``index_<type>.faiss`` per index type built from them.
    """
    import faiss

    if index_type not in INDEX_TYPES:
        raise ValueError(f"unknown index type {index_type!r} (one of {', '.join(INDEX_TYPES)})")
    entries = load_entries(guidance_dir)
    if not entries:
        raise ValueError(f"no guidance entries in {guidance_dir}")
    docs = entry_documents(entries)
    key = cache_key(content_fingerprint(guidance_dir), embedder.identity)
    folder = Path(cache_dir) / key
    folder.mkdir(parents=True, exist_ok=True)
    vectors_path, index_path = folder / "vectors.npy", folder / f"index_{index_type}.faiss"
    vectors = None
    if not rebuild and vectors_path.exists():
        vectors = np.load(vectors_path)
        if vectors.shape != (len(docs), embedder.dim):  # stale or partial: embed again
            vectors = None
    built = vectors is None
    if vectors is None:
        scope = embedder.all_threads() if hasattr(embedder, "all_threads") else contextlib.nullcontext()
        with scope:
            vectors = embed_documents(docs, embedder, progress=progress)
        _atomic_write(vectors_path, lambda p: np.save(p, vectors))
        (folder / "meta.json").write_text(json.dumps({
            "key": key,
            "model": embedder.identity,
            "entries": len(entries),
            "documents": len(docs),
            "built_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }, indent=1))
    faiss_index = None
    if not built and index_path.exists():
        faiss_index = faiss.read_index(str(index_path))
        if faiss_index.ntotal != len(docs):
            faiss_index = None
    if faiss_index is None:
        faiss_index = make_faiss_index(vectors, index_type)
        _atomic_write(index_path, lambda p: faiss.write_index(faiss_index, str(p)))
        built = True
    if index_type == "hnsw":
        faiss_index.hnsw.efSearch = 64
    elif index_type == "ivf":
        faiss_index.nprobe = min(faiss_index.nlist, 8)
    bm25 = BM25.from_terms([tokenize(lexical_text(e)) for e in entries])
    index = KBIndex(
        entries=entries,
        docs=docs,
        faiss_index=faiss_index,
        doc_entry=np.array([d.entry for d in docs], dtype=np.int64),
        doc_is_answer=np.array([d.kind == "answer" for d in docs], dtype=bool),
        bm25=bm25,
        key=key,
        index_type=index_type,
        model_identity=embedder.identity,
    )
    return index, built


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge_base build", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=GUIDANCE_DIR, help="guidance folder (default: %(default)s)")
    parser.add_argument("--index", choices=INDEX_TYPES, default="flat", help="flat = exact (default); ivf/hnsw = approximate")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--model", default=None, help="sentence-transformers name or path (default: $KB_MODEL or the offline e5)")
    parser.add_argument("--rebuild", action="store_true", help="ignore the cache")
    args = parser.parse_args(argv)
    from knowledge_base.embedding import Embedder

    embedder = Embedder(args.model)
    index, built = build_index(embedder, args.dir, args.index, args.cache_dir, args.rebuild)
    state = "built" if built else "up to date"
    print(f"{state}: {len(index.entries)} entries, {index.size} documents, {args.index} index, "
          f"{Path(args.cache_dir) / index.key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

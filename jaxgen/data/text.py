"""A byte-level tokenizer: UTF-8 bytes plus PAD, BOS and EOS, 259 tokens, nothing to download.

Captions here are short English phrases; bytes cost a few more positions than a learned
vocabulary but need no vocabulary file, never meet an unknown word, and tokenize any caption
set (COCO's included) the same way.
"""

import numpy as np

PAD, BOS, EOS = 0, 1, 2
BYTE_OFFSET = 3
VOCAB_SIZE = 256 + BYTE_OFFSET


def tokenize(texts: list[str] | str, max_length: int = 64) -> np.ndarray:
    """UTF-8 bytes as tokens: [N, max_length] int32, BOS text EOS then PAD. Longer texts are
    cut (their EOS kept), as CLIP's tokenizer truncates at its context length."""
    if isinstance(texts, str):
        texts = [texts]
    if max_length < 3:
        raise ValueError(f"max_length must leave room for BOS, a byte and EOS, got {max_length}")
    tokens = np.full((len(texts), max_length), PAD, np.int32)
    for i, text in enumerate(texts):
        body = [b + BYTE_OFFSET for b in text.encode("utf-8")][: max_length - 2]
        tokens[i, : len(body) + 2] = [BOS, *body, EOS]
    return tokens


def detokenize(tokens: np.ndarray) -> list[str]:
    """The texts back from `tokenize`'s tokens (cut ones as cut)."""
    texts = []
    for row in np.asarray(tokens):
        body = bytes(int(t) - BYTE_OFFSET for t in row if t >= BYTE_OFFSET)
        texts.append(body.decode("utf-8", errors="replace"))
    return texts

"""Tiny real CTranslate2 translation models for the NMT tests, built at run time (nothing downloaded).

A sentencepiece model is trained on a small generated corpus, and a one-layer Transformer with seeded
random weights is written with :mod:`ctranslate2.specs`, laid out the way ``ct2-transformers-converter``
lays out NLLB-200, M2M100, MADLAD-400 and OPUS-MT models (vocabulary with the family's language
tokens, tokenizer files under their usual names). Their translations are gibberish; the tests check
the machinery around the model, not its quality.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import sentencepiece as spm
from ctranslate2.specs import transformer_spec

#: Words the training corpus is made of (English, German, French, some Chinese characters).
_TEXT = (
    "the quick brown fox jumps over a lazy dog while people watch the video and read subtitles "
    "she had your dark suit in greasy wash water all year permission is hereby granted free of "
    "charge to any person obtaining a copy of this software "
    "der schnelle braune Fuchs springt über den faulen Hund die Werbung vermittelt einen falschen "
    "Eindruck jedem der diese Software erhält wird hiermit unentgeltlich die Genehmigung erteilt "
    "le renard brun rapide saute par dessus le chien paresseux et c'est la dictée numéro un "
    "nous regardons la vidéo avec des sous-titres 砸 自 己 的 脚 我 们 看 视 频"
)
_WORDS = _TEXT.split()


def corpus(lines: int = 400, seed: int = 0) -> list[str]:
    """``lines`` pseudo-sentences drawn from :data:`_WORDS` (seeded)."""
    rng = random.Random(seed)
    out = []
    for _ in range(lines):
        words = rng.choices(_WORDS, k=rng.randint(3, 14))
        out.append(" ".join(words).capitalize() + rng.choice(".?!,"))
    return out


def train_sentencepiece(directory: Path, vocab_size: int = 240) -> Path:
    """Train a small sentencepiece model in ``directory``; returns the ``.model`` path."""
    directory.mkdir(parents=True, exist_ok=True)
    text = directory / "corpus.txt"
    text.write_text("\n".join(corpus()) + "\n", encoding="utf-8")
    prefix = directory / "spm"
    spm.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(prefix),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        num_threads=1,
        minloglevel=2,
    )
    return prefix.with_suffix(".model")


def spm_pieces(model: Path) -> list[str]:
    """The pieces of a sentencepiece model, in id order (``<unk>``, ``<s>``, ``</s>`` first)."""
    sp = spm.SentencePieceProcessor(model_file=str(model))
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def build_model(
    directory: Path,
    vocabulary: Sequence[str],
    *,
    tokenizers: dict[str, Path],
    decoder_start_token: str | None = "</s>",
    suppressed: Iterable[str] = (),
    d_model: int = 32,
    ffn: int = 64,
    seed: int = 0,
    scale: float = 0.2,
) -> Path:
    """Write a one-layer Transformer with random weights over ``vocabulary`` to ``directory``.

    ``tokenizers`` maps file names in the model directory to sentencepiece models to copy there.
    Tokens in ``suppressed`` (and ``<unk>``) get a strongly negative output bias, so the random model
    does not emit them: its output then always decodes to some text.
    """
    rng = np.random.default_rng(seed)
    vocab = list(vocabulary)
    size = len(vocab)

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm(spec: object) -> None:
        spec.gamma = np.ones(d_model, dtype=np.float32)  # type: ignore[attr-defined]
        spec.beta = np.zeros(d_model, dtype=np.float32)  # type: ignore[attr-defined]

    def linear(spec: object, rows: int, cols: int) -> None:
        spec.weight = rand(rows, cols)  # type: ignore[attr-defined]
        spec.bias = np.zeros(rows, dtype=np.float32)  # type: ignore[attr-defined]

    spec = transformer_spec.TransformerSpec.from_config(1, 2)
    for side in (spec.encoder, spec.decoder):
        embeddings = side.embeddings[0] if isinstance(side.embeddings, list) else side.embeddings
        embeddings.weight = rand(size, d_model)
        norm(side.layer_norm)
        for layer in side.layer:
            norm(layer.self_attention.layer_norm)
            linear(layer.self_attention.linear[0], 3 * d_model, d_model)
            linear(layer.self_attention.linear[1], d_model, d_model)
            if hasattr(layer, "attention"):
                norm(layer.attention.layer_norm)
                linear(layer.attention.linear[0], d_model, d_model)
                linear(layer.attention.linear[1], 2 * d_model, d_model)
                linear(layer.attention.linear[2], d_model, d_model)
            norm(layer.ffn.layer_norm)
            linear(layer.ffn.linear_0, ffn, d_model)
            linear(layer.ffn.linear_1, d_model, ffn)
    linear(spec.decoder.projection, size, d_model)
    bias = np.zeros(size, dtype=np.float32)
    for token in {"<unk>", *suppressed}:
        if token in vocab:
            bias[vocab.index(token)] = -1e4
    spec.decoder.projection.bias = bias

    spec.config.decoder_start_token = decoder_start_token
    spec.register_source_vocabulary(vocab)
    spec.register_target_vocabulary(vocab)
    spec.validate()
    directory.mkdir(parents=True, exist_ok=True)
    spec.save(str(directory))
    for name, model in tokenizers.items():
        shutil.copyfile(model, directory / name)
    return directory


def nllb_model(directory: Path, sp_model: Path, languages: Sequence[str]) -> Path:
    """NLLB-200 layout: ``eng_Latn``-style tokens after the pieces, ``sentencepiece.bpe.model``."""
    specials = [*languages, "<mask>"]
    return build_model(
        directory,
        [*spm_pieces(sp_model), *specials],
        tokenizers={"sentencepiece.bpe.model": sp_model},
        suppressed=specials,
    )


def m2m100_model(directory: Path, sp_model: Path, codes: Sequence[str]) -> Path:
    """M2M100 layout: ``__en__``-style tokens and ``madeupword`` fillers, ``sentencepiece.bpe.model``."""
    specials = [*(f"__{code}__" for code in codes), "madeupword0", "madeupword1"]
    return build_model(
        directory,
        [*spm_pieces(sp_model), *specials],
        tokenizers={"sentencepiece.bpe.model": sp_model},
        suppressed=specials,
    )


def madlad_model(directory: Path, sp_model: Path, codes: Sequence[str]) -> Path:
    """MADLAD-400 (T5) layout: ``<2de>``-style tokens, ``<pad>`` decoder start, ``spiece.model``."""
    specials = ["<pad>", *(f"<2{code}>" for code in codes)]
    return build_model(
        directory,
        [*spm_pieces(sp_model), *specials],
        tokenizers={"spiece.model": sp_model},
        decoder_start_token="<pad>",
        suppressed=specials,
    )


def opus_mt_model(directory: Path, sp_model: Path, target_tokens: Sequence[str] = ()) -> Path:
    """OPUS-MT (Marian) layout: ``source.spm`` and ``target.spm``; ``>>deu<<`` tokens if multi-target."""
    specials = [*(f">>{code}<<" for code in target_tokens), "<pad>"]
    return build_model(
        directory,
        [*spm_pieces(sp_model), *specials],
        tokenizers={"source.spm": sp_model, "target.spm": sp_model},
        suppressed=specials,
    )

"""A tiny real transformers translation checkpoint (M2M100 layout), made at run time for the
pull-time conversion tests: a sentencepiece model trained on a small corpus, a ``vocab.json`` and
a one-layer M2M100 with seeded random weights, saved by transformers itself as the authors'
repositories hold them. Its translations are gibberish; the tests check the conversion and what
the converted model offers, not quality."""

from __future__ import annotations

import json
from pathlib import Path

from tests.nmt_models import spm_pieces, train_sentencepiece


def tiny_m2m100(directory: Path) -> dict[str, bytes]:
    """Write the checkpoint to ``directory`` and return its files as ``{name: bytes}``."""
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    torch.manual_seed(0)
    spm_dir = directory / "spm"
    model = train_sentencepiece(spm_dir)
    pieces = [p for p in spm_pieces(model) if p not in ("<unk>", "<s>", "</s>")]
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3} | {p: i + 4 for i, p in enumerate(pieces)}
    out = directory / "checkpoint"
    out.mkdir(parents=True)
    (out / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (out / "sentencepiece.bpe.model").write_bytes(model.read_bytes())
    from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES

    # As the authors' repositories list them (special_tokens_map.json): the converter takes the
    # language tokens from there.
    languages = [f"__{code}__" for code in FAIRSEQ_LANGUAGE_CODES["m2m100"]]
    tokenizer = M2M100Tokenizer(
        str(out / "vocab.json"), str(out / "sentencepiece.bpe.model"), additional_special_tokens=languages
    )
    config = M2M100Config(
        vocab_size=len(vocab) + len(languages) + tokenizer.num_madeup_words,  # as fairseq laid it out
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=128,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    M2M100ForConditionalGeneration(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.is_file()}

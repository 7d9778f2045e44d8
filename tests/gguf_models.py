"""A tiny real GGUF chat model for llama.cpp, written at run time with the ``gguf`` package: a
one-layer Llama over a byte-level vocabulary with seeded random weights and a chat template, in
one file or split in two (``-00001-of-00002.gguf``) as the big models' repositories ship them.
llama.cpp loads it and answers (gibberish); the tests check pulling, locking and loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tiny_gguf(directory: Path, stem: str, *, split: bool = False) -> dict[str, bytes]:
    """Write the model as ``stem.gguf`` (or two split files) and return ``{name: bytes}``."""
    import gguf

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)] + ["▁", "▁the", "▁a"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * 3
    n_vocab, n_embd, n_ff, n_head = len(tokens), 32, 64, 2
    writer = gguf.GGUFWriter(directory / f"{stem}.gguf", "llama", split_max_tensors=6 if split else 0)
    writer.add_name(stem)
    writer.add_context_length(512)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(1)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * n_vocab)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_chat_template(CHAT_TEMPLATE)

    def tensor(name: str, *shape: int, ones: bool = False) -> None:
        data = np.ones(shape, np.float32) if ones else (rng.standard_normal(shape) * 0.1).astype(np.float32)
        writer.add_tensor(name, data)

    tensor("token_embd.weight", n_vocab, n_embd)
    tensor("output_norm.weight", n_embd, ones=True)
    tensor("output.weight", n_vocab, n_embd)
    tensor("blk.0.attn_norm.weight", n_embd, ones=True)
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        tensor(f"blk.0.{name}.weight", n_embd, n_embd)
    tensor("blk.0.ffn_norm.weight", n_embd, ones=True)
    tensor("blk.0.ffn_gate.weight", n_ff, n_embd)
    tensor("blk.0.ffn_up.weight", n_ff, n_embd)
    tensor("blk.0.ffn_down.weight", n_embd, n_ff)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return {p.name: p.read_bytes() for p in sorted(directory.glob(f"{stem}*.gguf"))}

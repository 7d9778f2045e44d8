"""Greedy decoding of several prompts at once, as parallel sequences of one llama.cpp context.

One decoding step reads all of the model's weights whatever the number of sequences it advances,
so sequences decoded side by side share that cost. On 2 AVX-512 cores the bundled 1.5B model made
27.5 tokens/s for one sequence, 35.0 for two, 41.2 for four and 35.8 for eight together
(``bench/translate.py``'s ``parallel_decoding``, best of three rounds): on two cores the matrix
products are compute-bound and gain little. A GPU step is bound by reading the weights, which is
what batching shares (not measured here: no GPU was lent). This is llama.cpp's batched decoding
(its ``batched`` example, and the slots of its server) through llama-cpp-python's low-level API:

* each request takes a *slot* (a sequence id of the context) while it runs; a step feeds every
  running sequence its last token, and the prompts of newly admitted ones (in pieces of the batch
  size), in one ``llama_decode`` call;
* a prompt is not computed again where it repeats one already in the cache: a finished sequence's
  tokens stay in its slot, and a new prompt starts from the longest prefix it shares with any slot
  (copied cells: the shared system prompt of a translation's requests is computed once);
* callers on several threads share the decoder: whoever finds it free runs the steps for every
  queued and running sequence (its own and the others') until its own are done, then hands over.

The KV cache is unified (one pool of ``context`` cells for every sequence), so copied prefixes cost
no room; each request must fit a slot's share (``context / slots``) on its own, prompt and answer.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import numpy as np

from vodscribe.engines.text_translator import TranslationError


@dataclass(eq=False, slots=True)
class _Sequence:
    """One request: its prompt, its answer so far and the state of its slot."""

    prompt: list[int]
    max_tokens: int
    out: list[int] = field(default_factory=list)
    slot: int = -1
    fed: int = 0  # tokens of prompt + out whose cells are in the cache
    done: bool = False
    error: str | None = None

    @property
    def tokens(self) -> list[int]:
        return self.prompt + self.out


@dataclass(slots=True)
class DecoderStats:
    """What the decoder has done since it was made (for tests and benchmarks)."""

    steps: int = 0  # llama_decode calls
    answering: int = 0  # sequences given a token, summed over the steps (over ``steps``: parallelism)
    prompt_tokens: int = 0  # tokens of every prompt admitted
    reused_tokens: int = 0  # of which taken from cells already in the cache


class ParallelDecoder:
    """Greedy generation for many prompts at once on one llama.cpp model (see the module docstring).

    ``model``: the ``llama_model_p`` of a loaded model (kept alive by the caller); ``slots``:
    sequences decoded at once; ``context``: KV cells shared by all of them; ``flash_attention``:
    let llama.cpp use it where the device has it.
    """

    def __init__(
        self,
        model: Any,
        *,
        slots: int,
        context: int,
        threads: int,
        batch: int = 512,
        flash_attention: bool = False,
    ) -> None:
        if slots < 1 or context < 2 * slots:
            raise TranslationError(f"cannot decode {slots} sequences in a context of {context} tokens")
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = context
        params.n_batch = params.n_ubatch = batch
        params.n_seq_max = slots
        params.kv_unified = True  # copied prefixes share cells
        params.n_threads = params.n_threads_batch = threads
        # Off unless asked for (a GPU): on a CPU it sums in half precision, and the answers then differ
        # from those llama-cpp-python's own context (flash attention off) gave the translation benchmark.
        params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
            if flash_attention
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        self._ctx = llama_cpp.llama_init_from_model(model, params)
        if not self._ctx:
            raise TranslationError("llama.cpp could not create a context for parallel decoding")
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._batch = llama_cpp.llama_batch_init(batch, 0, 1)
        self.batch_size = batch
        self.slots = slots
        self.context = context
        self.per_sequence = context // slots
        self._resident: list[list[int]] = [[] for _ in range(slots)]  # tokens whose cells a slot holds
        self._running: dict[int, _Sequence] = {}  # by slot
        self._waiting: deque[_Sequence] = deque()
        self._cond = threading.Condition()
        self._leading = False
        self._closed = False
        self.stats = DecoderStats()

    # --- the callers' side ------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Sequence[int]], max_tokens: Sequence[int]) -> list[list[int]]:
        """The greedy continuation of each prompt (its tokens, end of generation excluded), at most
        ``max_tokens`` each; a request that cannot fit a slot raises :class:`TranslationError`."""
        sequences = [
            _Sequence(list(p), self._budget(len(p), n)) for p, n in zip(prompts, max_tokens, strict=True)
        ]
        if not sequences:
            return []
        with self._cond:
            if self._closed:
                raise TranslationError("the parallel decoder is closed")
            self._waiting.extend(sequences)
        while True:
            with self._cond:
                while self._leading and not all(s.done for s in sequences):
                    self._cond.wait()
                if all(s.done for s in sequences):
                    break
                self._leading = True
            try:
                while not all(s.done for s in sequences):
                    self._step()
            except BaseException as exc:  # no caller may wait forever on a sequence nobody decodes
                self._fail_all(f"llama.cpp decoding failed: {exc}")
                raise
            finally:
                with self._cond:
                    self._leading = False
                    self._cond.notify_all()
        failed = next((s.error for s in sequences if s.error), None)
        if failed:
            raise TranslationError(failed)
        return [s.out for s in sequences]

    def close(self) -> None:
        """Free the context, once the steps under way end; requests still queued fail."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            while self._leading:
                self._cond.wait()
            for s in [*self._running.values(), *self._waiting]:
                s.error, s.done = "the parallel decoder was closed", True
            self._running.clear()
            self._waiting.clear()
            self._cond.notify_all()
        llama_cpp.llama_batch_free(self._batch)
        llama_cpp.llama_free(self._ctx)

    def _budget(self, prompt: int, max_tokens: int) -> int:
        if prompt < 1:
            raise TranslationError("an empty prompt cannot be decoded")
        room = self.per_sequence - prompt
        if room < 1:
            raise TranslationError(
                f"a prompt of {prompt} tokens does not fit the translation model's context "
                f"({self.per_sequence} tokens a sequence)"
            )
        return max(1, min(max_tokens, room))

    def _fail_all(self, message: str) -> None:
        with self._cond:
            for s in [*self._running.values(), *self._waiting]:
                s.error, s.done = message, True
            self._running.clear()
            self._waiting.clear()
            self._resident = [[] for _ in range(self.slots)]
        llama_cpp.llama_memory_clear(self._memory, True)

    # --- the leader's side ------------------------------------------------------------------------
    def _step(self) -> None:
        """Admit waiting sequences to free slots, then one ``llama_decode`` for all of them."""
        self._admit()
        batch = self._batch
        batch.n_tokens = 0
        answers: list[tuple[_Sequence, int]] = []  # sequences that get logits, and where
        # Running sequences first (one token each), then prompts as far as the batch has room.
        order = sorted(self._running.values(), key=lambda s: len(s.tokens) - s.fed > 1)
        for s in order:
            tokens = s.tokens
            take = min(len(tokens) - s.fed, self.batch_size - batch.n_tokens)
            for k in range(take):
                pos = s.fed + k
                self._add(tokens[pos], pos, s.slot, last := pos == len(tokens) - 1)
                if last:
                    answers.append((s, batch.n_tokens - 1))
            s.fed += take
        if not batch.n_tokens:
            # Cannot happen: with nothing running, _admit makes room for the first waiting sequence.
            raise TranslationError("the parallel decoder has nothing to decode")
        code = llama_cpp.llama_decode(self._ctx, batch)
        if code != 0:
            raise TranslationError(f"llama_decode returned {code}")
        self.stats.steps += 1
        self.stats.answering += len(answers)
        for s, i in answers:
            logits = llama_cpp.llama_get_logits_ith(self._ctx, i)
            token = int(np.ctypeslib.as_array(logits, shape=(self._n_vocab,)).argmax())
            if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                self._finish(s)
                continue
            s.out.append(token)
            if len(s.out) >= s.max_tokens:
                self._finish(s)

    def _add(self, token: int, pos: int, seq: int, logits: bool) -> None:
        batch, i = self._batch, self._batch.n_tokens
        batch.token[i] = token
        batch.pos[i] = pos
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = seq
        batch.logits[i] = logits
        batch.n_tokens = i + 1

    def _finish(self, s: _Sequence) -> None:
        self._resident[s.slot] = s.tokens[: s.fed]  # what its cells hold, for a later prompt to share
        del self._running[s.slot]
        with self._cond:
            s.done = True
            self._cond.notify_all()

    def _admit(self) -> None:
        while True:
            with self._cond:
                if not self._waiting or len(self._running) == self.slots:
                    return
                s = self._waiting[0]
                if self._cells() + len(s.prompt) + s.max_tokens > self.context and not self._evict(s):
                    return  # it waits for a running sequence to end
                self._waiting.popleft()
            self._place(s)

    def _cells(self) -> int:
        """Cells in use, counting shared ones once per slot (an overestimate, to stay on the safe side)."""
        return sum(len(s.tokens) for s in self._running.values()) + sum(
            len(self._resident[k]) for k in range(self.slots) if k not in self._running
        )

    def _evict(self, s: _Sequence) -> bool:
        """Drop idle slots' cells, least useful to ``s`` first, until ``s`` fits; whether it does."""
        idle = [k for k in range(self.slots) if k not in self._running and self._resident[k]]
        idle.sort(key=lambda k: _shared(self._resident[k], s.prompt))
        for k in idle:
            if self._cells() + len(s.prompt) + s.max_tokens <= self.context:
                break
            llama_cpp.llama_memory_seq_rm(self._memory, k, -1, -1)
            self._resident[k] = []
        return self._cells() + len(s.prompt) + s.max_tokens <= self.context

    def _place(self, s: _Sequence) -> None:
        """Give ``s`` a free slot, starting from the longest prefix of its prompt the cache holds."""
        limit = len(s.prompt) - 1  # the last prompt token is always decoded: it gives the first logits
        held = {k: self._resident[k] for k in range(self.slots) if k not in self._running}
        held.update({k: r.tokens[: r.fed] for k, r in self._running.items()})
        source, shared = max(
            ((k, min(_shared(tokens, s.prompt), limit)) for k, tokens in held.items()),
            key=lambda pair: pair[1],
        )
        free = [k for k in range(self.slots) if k not in self._running]
        if source in free:
            slot = source
            llama_cpp.llama_memory_seq_rm(self._memory, slot, shared, -1)
        else:  # the emptiest free slot takes a copy of the prefix
            slot = min(free, key=lambda k: len(self._resident[k]))
            llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)
            if shared:
                llama_cpp.llama_memory_seq_cp(self._memory, source, slot, 0, shared)
        self._resident[slot] = []
        s.slot, s.fed = slot, shared
        self.stats.prompt_tokens += len(s.prompt)
        self.stats.reused_tokens += shared
        self._running[slot] = s


def _shared(a: Sequence[int], b: Sequence[int]) -> int:
    """The length of the common prefix of ``a`` and ``b``."""
    n = min(len(a), len(b))
    if n and a[:n] == b[:n]:
        return n
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n

"""Translation quality and speed of every text translation backend available here.

Usage (from the repository root, in the project's virtual environment)::

    python bench/translate.py [--pairs en-de,de-en] [--limit N] [--nmt DIR[=PAIR]]... [--no-llm]
                              [--llm-parallel N] [--no-pairs] [--no-speech] [--no-subtitle-job]
                              [--data DIR]

For each backend (the bundled LLM when ``vodscribe[llm]`` is installed; each ``--nmt`` directory
and each entry of ``VODSCRIBE_NMT_MODELS``) and each pair of ``bench/data/parallel.json`` it
supports, the source lines are translated as one subtitle job and scored with chrF (sacrebleu,
default chrF2) and BLEU against the human references; ``seconds_per_line`` is the wall time of the
job divided by its lines. A ``copy`` row (the source itself as the "translation") shows the floor.
Whisper's own translate task is speech-to-text, so it has no text row; instead a second part runs
X->English on real speech clips (``bench/data/speech_to_english.json``): Whisper's translate task
against recognition + each text backend, scored with chrF against English references. The clips come
from the test-data folder ``--data`` (default ``shared/testdata`` beside the repository checkout).

Prints one JSON document on stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from typing import Any

import sacrebleu

from vodscribe import languages
from vodscribe.engines.text_translator import TextTranslator
from vodscribe.models.resolve import ref

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA = REPO_ROOT / "bench" / "data" / "parallel.json"
SPEECH = REPO_ROOT / "bench" / "data" / "speech_to_english.json"
#: The project's test data: ``shared/testdata`` beside the repository checkout (``--data`` overrides it).
DEFAULT_TESTDATA = REPO_ROOT.parent / "shared" / "testdata"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _backends(args: argparse.Namespace) -> list[TextTranslator]:
    found: list[TextTranslator] = []
    entries = list(args.nmt) + [e for e in os.environ.get("VODSCRIBE_NMT_MODELS", "").split(",") if e.strip()]
    if entries:
        from vodscribe.engines.nmt import CTranslate2Translator

        for entry in entries:
            model_dir, _, pair = entry.partition("=")
            found.append(CTranslate2Translator(model_dir.strip(), pair=pair.strip() or None))
    if not args.no_llm:
        from vodscribe.engines.llm import LlamaTranslator, llm_available

        chat = ref("llm", os.environ.get("VODSCRIBE_LLM_MODEL", "") or "bundled")
        if not chat.bundled or llm_available():
            model = None if chat.bundled else Path(chat.value)
            found.append(LlamaTranslator(model, threads=args.threads, parallel=args.llm_parallel))
        else:
            _log("LLM backend not installed (pip install 'vodscribe[llm]'): skipped")
    return found


def _score(hypotheses: list[str], references: list[str], target: str) -> dict[str, float]:
    tokenize = "zh" if target == "zh" else "13a"
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    bleu = sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize)
    return {"chrf": round(chrf.score, 1), "bleu": round(bleu.score, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", default="", help="Comma-separated pairs (default: all in the data file)")
    parser.add_argument("--limit", type=int, default=0, help="Lines per pair (default: all)")
    parser.add_argument("--nmt", action="append", default=[], help="A CTranslate2 model dir (repeatable)")
    parser.add_argument("--no-llm", action="store_true", help="Skip the LLM backend")
    parser.add_argument("--threads", type=int, default=0, help="LLM CPU threads (0 = all cores)")
    parser.add_argument("--llm-parallel", type=int, default=4, help="LLM sequences decoded at once")
    parser.add_argument("--no-speech", action="store_true", help="Skip the speech-to-English comparison")
    parser.add_argument("--no-subtitle-job", action="store_true", help="Skip the 84 s file's subtitle job")
    parser.add_argument("--no-pairs", action="store_true", help="Skip the parallel-text pairs")
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_TESTDATA,
        metavar="DIR",
        help="Test-data folder with the speech clips (default: shared/testdata beside the repository)",
    )
    args = parser.parse_args()

    data = json.loads(DATA.read_text(encoding="utf-8"))
    wanted = [p.strip() for p in args.pairs.split(",") if p.strip()] or list(data["pairs"])
    pairs: dict[str, list[dict[str, Any]]] = {}
    for key in [] if args.no_pairs else wanted:
        items = data["pairs"][key]
        pairs[key] = items[: args.limit] if args.limit else items

    report: dict[str, Any] = {
        "config": {
            "data": f"{DATA.relative_to(REPO_ROOT)} ({data['source']}; {data['licence']})",
            "cpu_count": os.cpu_count(),
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),
            "platform": platform.platform(),
            "versions": {name: _version(name) for name in ("ctranslate2", "llama-cpp-python", "sacrebleu")},
        },
        "backends": {},
    }
    copy: dict[str, Any] = {}
    for key, items in pairs.items():
        copy[key] = _score([i["src"] for i in items], [i["ref"] for i in items], key.split("-")[1])
    report["backends"]["copy"] = {"pairs": copy}

    backends = _backends(args)
    for backend in backends:
        _log(f"backend {backend.name}")
        rows: dict[str, Any] = {}
        load_s: float | None = None
        for key, items in pairs.items():
            source, target = (languages.resolve(code) for code in key.split("-"))
            if not backend.supports(source, target):
                rows[key] = {"supported": False}
                continue
            if load_s is None:  # the first call loads the weights: time it apart
                started = time.perf_counter()
                backend.translate(["Hello."], source, target)
                load_s = round(time.perf_counter() - started, 2)
            started = time.perf_counter()
            hypotheses = backend.translate([i["src"] for i in items], source, target)
            seconds = time.perf_counter() - started
            rows[key] = {
                **_score(hypotheses, [i["ref"] for i in items], target.iso1 or target.b),
                "lines": len(items),
                "seconds_per_line": round(seconds / len(items), 3),
                "examples": [
                    {"src": i["src"], "hyp": h, "ref": i["ref"]}
                    for i, h in list(zip(items, hypotheses, strict=True))[:2]
                ],
            }
            _log(f"  {key}: chrF {rows[key]['chrf']}  {rows[key]['seconds_per_line']} s/line")
        scored = [r for r in rows.values() if r.get("supported", True)]
        report["backends"][backend.name] = {
            "load_and_first_line_s": load_s,
            "mean_chrf": round(sum(r["chrf"] for r in scored) / len(scored), 1) if scored else None,
            "mean_seconds_per_line": (
                round(sum(r["seconds_per_line"] for r in scored) / len(scored), 3) if scored else None
            ),
            "pairs": rows,
        }
    if not args.no_speech:
        report["speech_to_english"] = _speech_to_english(backends, args.data)
    if not args.no_subtitle_job:
        report["subtitle_job"] = _subtitle_job(backends, args.data)
    report["parallel_decoding"] = _parallel_decoding(backends)
    report["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


def _speech_to_english(backends: list[TextTranslator], testdata: Path) -> dict[str, Any]:
    """Whisper's translate task against recognition + each text backend, on the same speech clips."""
    from vodscribe.engines.whisper import get_engine
    from vodscribe.speech.subtitle_translation import TextTranslation, Translator, WhisperTranslation
    from vodscribe.speech.transcription import transcribe_file

    spec = json.loads(SPEECH.read_text(encoding="utf-8"))
    if not testdata.is_dir():
        return {"skipped": f"no test-data folder {testdata} (pass --data DIR)"}
    engine = get_engine()
    candidates: list[Translator] = [WhisperTranslation(), *(TextTranslation(b) for b in backends)]
    rows: dict[str, Any] = {}
    for translator in candidates:
        hypotheses, references, seconds, audio = [], [], 0.0, 0.0
        clips = []
        for clip in spec["clips"]:
            source = languages.resolve(clip["lang"])
            if not translator.supports(source, languages.ENGLISH):
                continue
            started = time.perf_counter()
            transcript = transcribe_file(
                testdata / clip["file"],
                engine,
                subtitles_language=languages.ENGLISH,
                translators=[translator],
            )
            seconds += time.perf_counter() - started
            audio += transcript.media.duration or 0.0
            text = " ".join(c.text.replace("\n", " ") for c in transcript.cues)
            hypotheses.append(text)
            references.append(clip["reference"])
            clips.append({"file": clip["file"], "hypothesis": text, "reference": clip["reference"]})
        if not clips:
            continue
        _log(f"speech -> English, {translator.name}: {len(clips)} clips")
        rows[translator.name] = {
            **_score(hypotheses, references, "en"),
            "clips": clips,
            "rtf": round(seconds / audio, 3) if audio else None,
        }
    return {"about": spec["about"], "backends": rows}


def _subtitle_job(backends: list[TextTranslator], testdata: Path) -> dict[str, Any]:
    """The worker's job for a video's translated tracks: the 84 s English file recognised once, then
    its subtitles translated into German, and into German, French and Spanish at the same time (as a
    worker runs a video's subtitle-language tasks side by side), by each text backend.

    A local LLM runs each job twice in this process: one request decoded at a time (``parallel=1``,
    how it worked before parallel decoding) and with its default parallel sequences. Ratios compare
    runs made here: ``parallel_over_one_at_a_time`` (one target) and
    ``three_targets_over_one`` (three targets at once against one, both parallel).
    ``s_per_media_s`` is recognition + translation over the media's duration."""
    from vodscribe.engines.llm import LlamaTranslator
    from vodscribe.engines.whisper import get_engine
    from vodscribe.speech.subtitle_translation import TextTranslation
    from vodscribe.speech.transcription import transcribe_file

    path = testdata / "en" / "long_en_concat.wav"
    if not path.is_file():
        return {"skipped": f"no {path} (pass --data DIR)"}
    engine = get_engine()
    started = time.perf_counter()
    spoken = transcribe_file(path, engine)
    recognition_s = time.perf_counter() - started
    duration = spoken.media.duration or 1.0
    targets = [languages.resolve(code) for code in ("ger", "fre", "spa")]

    def job(backend: TextTranslator, wanted: list[languages.Language]) -> dict[str, Any]:
        """Translate into every ``wanted`` language at once (one thread each); seconds for all."""
        out: dict[str, int] = {}

        def one(target: languages.Language) -> None:
            translated = transcribe_file(
                path,
                engine,
                subtitles_language=target,
                translators=[TextTranslation(backend)],
                reuse=spoken.recognized,
            )
            out[target.b] = len(translated.cues)

        started = time.perf_counter()
        with ThreadPoolExecutor(len(wanted)) as pool:
            list(pool.map(one, wanted))
        seconds = time.perf_counter() - started
        return {
            "translation_s": round(seconds, 1),
            "s_per_media_s": round((recognition_s + seconds) / duration, 3),
            "cues": out,
        }

    rows: dict[str, Any] = {}
    for backend in backends:
        if not all(backend.supports(languages.ENGLISH, t) for t in targets):
            continue
        if isinstance(backend, LlamaTranslator):

            def fresh(parallel: int, model: LlamaTranslator = backend) -> LlamaTranslator:
                """A new translator (no length ratios learnt yet), loaded outside the timing."""
                t = LlamaTranslator(
                    model.model, cache_dir=model.cache_dir, threads=model.threads, parallel=parallel
                )
                t.translate(["Warm up."], languages.ENGLISH, languages.resolve("ita"))  # not a target
                return t

            row: dict[str, Any] = {"sequences": backend.parallel}
            for label, parallel in (("one_at_a_time", 1), ("parallel", backend.parallel)):
                row[label] = {}
                for size, wanted in (("one_target", targets[:1]), ("three_targets", targets)):
                    translator = fresh(parallel)
                    row[label][size] = job(translator, wanted)
                    translator.close()
            one, par = row["one_at_a_time"], row["parallel"]
            row["parallel_over_one_at_a_time"] = round(
                par["one_target"]["translation_s"] / one["one_target"]["translation_s"], 3
            )
            row["three_targets_over_one"] = round(
                par["three_targets"]["translation_s"] / par["one_target"]["translation_s"], 3
            )
            row["three_targets_parallel_over_one_at_a_time"] = round(
                par["three_targets"]["translation_s"] / one["three_targets"]["translation_s"], 3
            )
        else:
            row = {"one_target": job(backend, targets[:1]), "three_targets": job(backend, targets)}
        _log(f"subtitle job {backend.name}: {json.dumps(row)}")
        rows[backend.name] = row
    return {
        "file": "en/long_en_concat.wav",
        "media_s": round(duration, 1),
        "recognition_s": round(recognition_s, 1),
        "recognition_s_per_media_s": round(recognition_s / duration, 3),
        "targets": [t.b for t in targets],
        "backends": rows,
    }


def _parallel_decoding(backends: list[TextTranslator], tokens: int = 48, rounds: int = 3) -> dict[str, Any]:
    """What decoding sequences side by side gains on this machine: for 1, 2, 4 and 8 sequences at
    once (a fresh decoder on the loaded model each time), ``tokens`` greedy tokens each after a short
    prompt; tokens a second over all of them (the best of ``rounds`` rounds, the counts taken in
    turn within each round: this machine is noisy), and as a ratio to one sequence."""
    from vodscribe.engines.llm import LlamaTranslator
    from vodscribe.engines.parallel_decoding import ParallelDecoder

    rows: dict[str, Any] = {}
    for backend in backends:
        if not isinstance(backend, LlamaTranslator):
            continue
        loaded = backend.loaded()
        threads = backend.threads or os.cpu_count() or 1
        best: dict[int, float] = {}
        made_tokens: dict[int, int] = {}
        for _ in range(rounds):
            for n in (1, 2, 4, 8):
                decoder = ParallelDecoder(loaded.model, slots=n, context=n * 512, threads=threads)
                asks = [f"Count from {k + 1} to 100 in words." for k in range(n)]
                prompts = [loaded.prompt("Answer at length.", ask) for ask in asks]
                decoder.generate(prompts, [1] * n)  # the prompts' cells, computed outside the timing
                started = time.perf_counter()
                made = decoder.generate(prompts, [tokens] * n)
                seconds = time.perf_counter() - started
                decoder.close()
                made_tokens[n] = sum(map(len, made))
                best[n] = max(best.get(n, 0.0), made_tokens[n] / seconds)
        counts = {
            str(n): {
                "tokens_per_s": round(rate, 1),
                "tokens": made_tokens[n],
                "over_one_sequence": round(rate / best[1], 2),
            }
            for n, rate in best.items()
        }
        _log(f"parallel decoding {backend.name}: {json.dumps(counts)}")
        rows[backend.name] = counts
    return rows


def _version(name: str) -> str | None:
    try:
        return version(name)
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())

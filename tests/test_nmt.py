"""The CTranslate2 NMT backend, on tiny real models built at run time (see :mod:`tests.nmt_models`)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ctranslate2
import pytest
import sentencepiece

from tests import nmt_models
from vodscribe.engines import nmt
from vodscribe.engines.nmt import CTranslate2Translator, load_translators
from vodscribe.engines.text_translator import TextTranslator, TranslationError
from vodscribe.languages import LANGUAGES, resolve

ENG, GER, FRE, CHI, SPA = (resolve(code) for code in ("eng", "ger", "fre", "chi", "spa"))
NLLB_LANGUAGES = ("eng_Latn", "deu_Latn", "fra_Latn", "zho_Hans", "zho_Hant")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "",
    "She had your dark suit in greasy wash water all year.",
    "   ",
    "Permission is hereby granted, free of charge.",
]


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tiny model directory per family (plus the sentencepiece model they share)."""
    root = tmp_path_factory.mktemp("nmt")
    sp = nmt_models.train_sentencepiece(root / "spm")
    return {
        "spm": sp,
        "nllb": nmt_models.nllb_model(root / "nllb-200-tiny", sp, NLLB_LANGUAGES),
        "m2m100": nmt_models.m2m100_model(root / "m2m100-tiny", sp, ["en", "de", "fr", "zh"]),
        "madlad": nmt_models.madlad_model(root / "madlad400-tiny", sp, ["en", "de", "fr"]),
        "opus": nmt_models.opus_mt_model(root / "opus-mt-en-de", sp),
        "opus-multi": nmt_models.opus_mt_model(
            root / "opus-mt-tc-big-en-mul", sp, ["deu", "fra", "cmn_Hans", "cmn_Hant"]
        ),
    }


def engine(path: Path, **kwargs: Any) -> CTranslate2Translator:
    return CTranslate2Translator(path, **{"device": "cpu", "compute_type": "int8", **kwargs})


@pytest.fixture(scope="session")
def nllb(models: dict[str, Path]) -> CTranslate2Translator:
    return engine(models["nllb"])


@pytest.fixture(scope="session")
def pieces(models: dict[str, Path]) -> Callable[[str], list[str]]:
    """The sentencepiece pieces of a text, with the tokenizer the models share."""
    sp = sentencepiece.SentencePieceProcessor(model_file=str(models["spm"]))
    return lambda text: list(sp.encode(text, out_type=str))


def fake_model(
    directory: Path, vocabulary: list[str], sp: Path | None, spm_name: str = "sentencepiece.bpe.model"
) -> Path:
    """A model directory with real metadata but a dummy model.bin (enough until the weights load)."""
    directory.mkdir(parents=True)
    (directory / "model.bin").write_bytes(b"not a model")
    (directory / "shared_vocabulary.json").write_text(json.dumps(vocabulary), encoding="utf-8")
    if sp is not None:
        shutil.copyfile(sp, directory / spm_name)
    return directory


# --- NLLB-200 -----------------------------------------------------------------------------------------


def test_nllb_family_and_languages_come_from_the_vocabulary(nllb: CTranslate2Translator) -> None:
    assert isinstance(nllb, TextTranslator)
    assert nllb.name == "nmt:nllb-200-tiny"
    assert nllb.family == "nllb"
    assert nllb.targets() == {"eng", "ger", "fre", "chi"}
    assert nllb.sources() == {"eng", "ger", "fre", "chi"}
    assert nllb.supports(ENG, GER) and nllb.supports(CHI, FRE)
    assert not nllb.supports(ENG, SPA)  # spa_Latn is not in the vocabulary
    assert not nllb.supports(SPA, ENG)
    assert not nllb.supports(ENG, ENG)
    assert nllb.target_prefix(CHI) == ["zho_Hans"]  # zho_Hant is there too; Chinese means Simplified
    assert nllb.source_prefix(GER, ENG) == ["deu_Latn"]


@pytest.mark.slow  # loads and runs a CTranslate2 model
def test_nllb_translates_one_string_per_sentence(nllb: CTranslate2Translator) -> None:
    out = nllb.translate(SENTENCES, ENG, GER)
    assert len(out) == len(SENTENCES)
    assert out[1] == out[3] == ""
    for i in (0, 2, 4):
        assert out[i].strip() and out[i] != SENTENCES[i]
        assert "deu_Latn" not in out[i] and "</s>" not in out[i]
    assert nllb.translate([], ENG, GER) == []
    assert nllb.translate(["", " "], ENG, GER) == ["", ""]


@pytest.mark.slow  # loads and runs a CTranslate2 model
def test_nllb_source_and_target_language_tokens_reach_the_model(
    nllb: CTranslate2Translator, pieces: Callable[[str], list[str]]
) -> None:
    source = nllb.encode("The quick brown fox.", ENG, GER)
    assert source[0] == "eng_Latn" and source[-1] == "</s>"
    assert source[1:-1] == pieces("The quick brown fox.")
    for target, token in ((GER, "deu_Latn"), (CHI, "zho_Hans"), (FRE, "fra_Latn")):
        raw = nllb.translate_tokens(["The quick brown fox.", ""], ENG, target)
        assert raw[0][0] == token and len(raw[0]) > 1
        assert raw[1] == []


def test_unsupported_pair_raises_naming_both_languages(nllb: CTranslate2Translator) -> None:
    with pytest.raises(TranslationError, match=r"English \(eng\) into Spanish \(spa\)"):
        nllb.translate(["Hello."], ENG, SPA)
    with pytest.raises(TranslationError, match="Spanish"):
        nllb.translate_tokens(["Hello."], SPA, ENG)


@pytest.mark.slow  # loads and runs a CTranslate2 model
def test_batches_hold_at_most_batch_size_sentences_and_keep_the_order(models: dict[str, Path]) -> None:
    sentences = [text if i % 5 else "" for i, text in enumerate(nmt_models.corpus(37, seed=3))]
    batched = engine(models["nllb"], batch_size=8, beam_size=1, compute_type="float32")
    out = batched.translate_tokens(sentences, ENG, FRE)  # loads the model

    calls: list[int] = []
    real = batched._model()  # the loaded ctranslate2.Translator

    class Spy:
        def translate_batch(self, source: list[list[str]], **kwargs: Any) -> Any:
            calls.append(len(source))
            return real.translate_batch(source, **kwargs)

    batched._translator = Spy()  # type: ignore[assignment]
    texts = batched.translate(sentences, ENG, FRE)
    non_blank = sum(1 for s in sentences if s)
    assert calls == [8, 8, 8, 5] and sum(calls) == non_blank == 29
    assert len(texts) == 37
    assert [t == "" for t in texts] == [s == "" for s in sentences]
    # Order: each output is the one its own sentence gives when translated alone (the random model
    # never stops by itself, and the length cap follows the longest sentence of a batch, so one of
    # the two is a prefix of the other).
    alone = engine(models["nllb"], batch_size=1, beam_size=1, compute_type="float32")
    checked = (1, 2, 3, 8, 36)
    assert len({" ".join(out[i][:12]) for i in checked}) == len(checked)  # the outputs differ
    for i in checked:
        single = alone.translate_tokens([sentences[i]], ENG, FRE)[0]
        common = min(len(single), len(out[i]))
        assert common >= 2 and single[:common] == out[i][:common]


@pytest.mark.slow  # loads and runs a CTranslate2 model
def test_construction_is_lazy_and_loading_happens_once(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[str] = []
    real = ctranslate2.Translator

    def counting(path: str, **kwargs: Any) -> ctranslate2.Translator:
        created.append(path)
        return real(path, **kwargs)

    monkeypatch.setattr(nmt.ctranslate2, "Translator", counting)
    t = engine(models["m2m100"])
    assert t.supports(ENG, GER) and t.targets()
    assert not t.loaded and t._translator is None and t._sp is None
    assert created == []

    errors: list[BaseException] = []

    def work() -> None:
        try:
            assert len(t.translate(["The fox.", "A dog."], ENG, GER)) == 2
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert t.loaded and created == [str(models["m2m100"])]


def test_auto_device_is_cpu_int8_without_a_gpu(models: dict[str, Path]) -> None:
    t = CTranslate2Translator(models["nllb"])
    if ctranslate2.get_cuda_device_count() == 0:
        assert (t.device, t.compute_type) == ("cpu", "int8")
    else:
        assert (t.device, t.compute_type) == ("cuda", "float16")


# --- other families -----------------------------------------------------------------------------------


@pytest.mark.slow  # loads and runs a CTranslate2 model
def test_m2m100(models: dict[str, Path]) -> None:
    t = engine(models["m2m100"])
    assert t.family == "m2m100"
    assert t.targets() == {"eng", "ger", "fre", "chi"}
    assert t.encode("Hello there.", FRE, ENG)[0] == "__fr__"
    assert t.target_prefix(CHI) == ["__zh__"]
    assert t.translate_tokens(["Hello there."], ENG, GER)[0][0] == "__de__"
    out = t.translate(SENTENCES, ENG, CHI)
    assert len(out) == 5 and out[0] and out[1] == "" and "__" not in out[0]


@pytest.mark.slow  # loads and runs a CTranslate2 model
def test_madlad_puts_the_target_token_first_in_the_source(models: dict[str, Path]) -> None:
    t = engine(models["madlad"])
    assert t.family == "madlad"
    assert t.targets() == {"eng", "ger", "fre"}
    assert t.supports(GER, FRE) and not t.supports(ENG, CHI)
    source = t.encode("Hello there.", ENG, GER)
    assert source[0] == "<2de>" and source[-1] == "</s>"
    assert t.target_prefix(GER) == []
    out = t.translate(SENTENCES, ENG, FRE)
    assert len(out) == 5 and out[0] and out[3] == "" and "<2" not in out[0]


@pytest.mark.slow  # loads and runs a CTranslate2 model
def test_opus_mt_single_pair_from_the_directory_name(
    models: dict[str, Path], pieces: Callable[[str], list[str]]
) -> None:
    t = engine(models["opus"])
    assert (t.name, t.family) == ("nmt:opus-mt-en-de", "opus-mt")
    assert t.targets() == {"ger"} and t.sources() == {"eng"}
    assert t.supports(ENG, GER)
    assert not t.supports(GER, ENG) and not t.supports(FRE, GER) and not t.supports(ENG, FRE)
    assert t.encode("Hello there.", ENG, GER) == [*pieces("Hello there."), "</s>"]
    out = t.translate(SENTENCES, ENG, GER)
    assert len(out) == 5 and out[0] and out[1] == ""


def test_opus_mt_pair_argument_and_unparseable_names(models: dict[str, Path], tmp_path: Path) -> None:
    assert engine(models["opus"], pair="fr->en").targets() == {"eng"}
    assert engine(models["opus"], pair="mul-en").sources() is None  # any source
    renamed = shutil.copytree(models["opus"], tmp_path / "marian-model")
    with pytest.raises(TranslationError, match="language pair"):
        engine(renamed)
    t = engine(renamed, pair="eng-ger")
    assert t.supports(ENG, GER) and t.targets() == {"ger"}
    with pytest.raises(TranslationError, match="Bad NMT language pair"):
        engine(renamed, pair="english-klingon")


@pytest.mark.slow  # loads and runs a CTranslate2 model
def test_opus_mt_multi_target_prepends_the_target_token(models: dict[str, Path]) -> None:
    t = engine(models["opus-multi"])
    assert t.family == "opus-mt"
    assert t.targets() == {"ger", "fre", "chi"}
    assert t.sources() == {"eng"}  # opus-mt-tc-big-en-mul
    assert t.encode("Hello.", ENG, CHI)[0] == ">>cmn_Hans<<"
    assert t.encode("Hello.", ENG, GER)[0] == ">>deu<<"
    assert not t.supports(FRE, GER)
    out = t.translate(["Hello there.", ""], ENG, FRE)
    assert out[0] and out[1] == "" and ">>" not in out[0]


@pytest.mark.parametrize(
    ("name", "pair"),
    [
        ("opus-mt-en-de", ("eng", "ger")),
        ("opus-mt-tc-big-en-fr", ("eng", "fre")),
        ("opus-mt-de-en-ct2-int8", ("ger", "eng")),
        ("opus-mt-mul-en", (None, "eng")),  # "mt" is the prefix there, not Maltese
        ("opus-mt-tc-big-gmq-en", (None, "eng")),
        ("Helsinki-NLP_opus-mt-en-ROMANCE", ("eng", None)),
        ("my-model", None),
    ],
)
def test_pair_from_directory_name(name: str, pair: tuple[str | None, str | None] | None) -> None:
    parsed = nmt._pair_from_dir_name(name)
    codes = None if parsed is None else tuple(None if lang is None else lang.b for lang in parsed)
    assert codes == pair


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("en-de", ("eng", "ger")),
        ("eng->fre", ("eng", "fre")),
        ("zh-Hans-en", ("chi", "eng")),
        ("pt-BR-en", ("por", "eng")),
        ("en-pt-BR", ("eng", "por")),
        ("German:English", ("ger", "eng")),
        ("mul-en", (None, "eng")),
    ],
)
def test_pair_argument_forms(text: str, pair: tuple[str | None, str | None]) -> None:
    parsed = nmt._parse_pair(text)
    assert tuple(None if lang is None else lang.b for lang in parsed) == pair


# --- language mapping (metadata only: the weights never load) -----------------------------------------

NLLB_CODES = [
    "eng_Latn", "deu_Latn", "arb_Arab", "arb_Latn", "zho_Hans", "zho_Hant", "yue_Hant", "nob_Latn",
    "nno_Latn", "srp_Cyrl", "est_Latn", "pes_Arab", "zsm_Latn", "lvs_Latn", "als_Latn", "azj_Latn",
    "azb_Arab", "uzn_Latn", "khk_Cyrl", "pbt_Arab", "swh_Latn", "ydd_Hebr", "npi_Deva", "plt_Latn",
    "hrv_Latn", "bos_Latn", "kor_Hang", "tur_Latn", "heb_Hebr",
]  # fmt: skip


def test_nllb_macrolanguages_map_to_their_flores_codes(models: dict[str, Path], tmp_path: Path) -> None:
    vocab = [*nmt_models.spm_pieces(models["spm"]), *NLLB_CODES]
    t = engine(fake_model(tmp_path / "nllb-fake", vocab, models["spm"]))
    expected = {
        "ara": "arb_Arab", "chi": "zho_Hans", "yue": "yue_Hant", "nor": "nob_Latn", "nno": "nno_Latn",
        "srp": "srp_Cyrl", "est": "est_Latn", "per": "pes_Arab", "may": "zsm_Latn", "lav": "lvs_Latn",
        "alb": "als_Latn", "aze": "azj_Latn", "uzb": "uzn_Latn", "mon": "khk_Cyrl", "pus": "pbt_Arab",
        "swa": "swh_Latn", "yid": "ydd_Hebr", "nep": "npi_Deva", "mlg": "plt_Latn", "hrv": "hrv_Latn",
        "bos": "bos_Latn", "kor": "kor_Hang", "tur": "tur_Latn", "heb": "heb_Hebr", "ger": "deu_Latn",
    }  # fmt: skip
    assert {code: t.target_prefix(resolve(code))[0] for code in expected} == expected
    assert t.targets() == set(expected) | {"eng"}
    assert not t.supports(ENG, resolve("haw")) and not t.loaded
    # The weights only load when needed; a broken model.bin is then a TranslationError.
    with pytest.raises(TranslationError, match="cannot load the model"):
        t.translate(["Hello."], ENG, GER)


def test_m2m100_and_madlad_codes(models: dict[str, Path], tmp_path: Path) -> None:
    pieces = nmt_models.spm_pieces(models["spm"])
    m2m = engine(
        fake_model(tmp_path / "m2m", [*pieces, "__en__", "__he__", "__jv__", "__zh__"], models["spm"])
    )
    assert {resolve(c).b: m2m.target_prefix(resolve(c))[0] for c in ("he", "jv", "zh")} == {
        "heb": "__he__",
        "jav": "__jv__",
        "chi": "__zh__",
    }
    madlad = engine(
        fake_model(tmp_path / "madlad", [*pieces, "<2en>", "<2iw>", "<2zh>"], models["spm"], "spiece.model")
    )
    assert madlad.family == "madlad"
    assert madlad.encode("Hi", ENG, resolve("he"))[0] == "<2iw>"
    assert madlad.targets() == {"eng", "heb", "chi"}


# --- broken directories -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prepare", "message"),
    [
        (lambda d, m: None, "does not exist"),
        (lambda d, m: d.mkdir(), "has no model.bin"),
        (lambda d, m: fake_model(d, ["<unk>", "eng_Latn", "deu_Latn"], None), "no sentencepiece tokenizer"),
        (lambda d, m: fake_model(d, ["<unk>", "hello", "world"], m["spm"]), "unknown layout"),
        (
            lambda d, m: (
                fake_model(d, ["<unk>", "eng_Latn"], m["spm"]),
                (d / "shared_vocabulary.json").unlink(),
            ),
            "unknown layout",
        ),
    ],
)
def test_broken_directories_are_refused_clearly(
    prepare: Callable[[Path, dict[str, Path]], object], message: str, models: dict[str, Path], tmp_path: Path
) -> None:
    directory = tmp_path / "broken"
    prepare(directory, models)
    with pytest.raises(TranslationError, match=message) as info:
        engine(directory)
    assert str(directory) in str(info.value)


def test_load_translators(models: dict[str, Path], tmp_path: Path) -> None:
    loaded = load_translators([models["nllb"], str(models["opus"])], device="cpu", beam_size=2)
    assert [t.name for t in loaded] == ["nmt:nllb-200-tiny", "nmt:opus-mt-en-de"]
    assert all(t.beam_size == 2 and not t.loaded for t in loaded)
    assert load_translators([]) == []
    with pytest.raises(TranslationError, match=r"has no model\.bin"):
        load_translators([models["nllb"], tmp_path])


# --- the real models' language tokens ---------------------------------------------------------------

REAL_CODES = json.loads((Path(__file__).parent / "data" / "nmt_language_codes.json").read_text())


def test_real_nllb_language_tokens_cover_every_language_nllb_has(
    models: dict[str, Path], tmp_path: Path
) -> None:
    """With the 202 language tokens of the real NLLB-200 vocabulary, every vodscribe language NLLB
    has maps to its FLORES-200 code, macrolanguages to the right member."""
    t = engine(nmt_models.nllb_model(tmp_path / "nllb-real-codes", models["spm"], REAL_CODES["nllb"]))
    missing = {lang.b for lang in LANGUAGES} - t.targets()
    assert missing == {"bre", "haw", "lat"}  # Breton, Hawaiian and Latin are not among NLLB's 200
    expected = {
        "chi": "zho_Hans", "ara": "arb_Arab", "per": "pes_Arab", "may": "zsm_Latn", "alb": "als_Latn",
        "aze": "azj_Latn", "uzb": "uzn_Latn", "mon": "khk_Cyrl", "pus": "pbt_Arab", "swa": "swh_Latn",
        "nor": "nob_Latn", "nno": "nno_Latn", "yid": "ydd_Hebr", "nep": "npi_Deva", "lav": "lvs_Latn",
        "est": "est_Latn", "yue": "yue_Hant", "ger": "deu_Latn", "fre": "fra_Latn", "jpn": "jpn_Jpan",
    }  # fmt: skip
    assert {b: t.target_prefix(resolve(b))[0] for b in expected} == expected
    assert set(t.target_prefix(lang)[0] for lang in LANGUAGES if lang.b in t.targets()) <= set(
        REAL_CODES["nllb"]
    )


def test_real_m2m100_language_tokens(models: dict[str, Path], tmp_path: Path) -> None:
    t = engine(nmt_models.m2m100_model(tmp_path / "m2m100-real-codes", models["spm"], REAL_CODES["m2m100"]))
    assert len(t.targets()) == 84
    assert {"nno", "yue", "haw", "lat", "tel"}.isdisjoint(t.targets())  # not among M2M100's 100
    expected = {
        "chi": "__zh__",
        "heb": "__he__",
        "jav": "__jv__",
        "nor": "__no__",
        "yid": "__yi__",
        "may": "__ms__",
    }
    assert {b: t.target_prefix(resolve(b))[0] for b in expected} == expected

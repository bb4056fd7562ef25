"""Settings that are a choice among a few are enums (Provider, OverlayStyle, CaptionQuality):
the settings file stores the value and reads any other text back as the default, and the
CLI's --provider words reach the model as Providers, also across a process boundary."""

from __future__ import annotations

import pickle
from dataclasses import asdict
from enum import Enum
from pathlib import Path

import pytest
from PIL import Image

import captioner.captioner as captioner_module
from captioner.cli import main
from captioner.cli.options import chosen_provider
from captioner.cli.parser import build_parser
from captioner.cluster import ActorConfig, actor_config
from captioner.errors import BundleError
from captioner.service import CaptionService
from captioner.session import Provider, as_provider, choose_providers
from gui.settings import AppSettings, CaptionQuality, settings_store
from gui.widgets.heatmap import OverlayStyle

pytestmark = pytest.mark.gui  # the settings file is Qt's QSettings

HAND_EDITED = {  # key -> (what the file says, what the app reads)
    "caption_quality": [("best", CaptionQuality.BEST), ("fast", CaptionQuality.FAST),
                        ("superb", CaptionQuality.FAST), ("", CaptionQuality.FAST)],
    "overlay_style": [("spotlight", OverlayStyle.SPOTLIGHT), ("heat", OverlayStyle.HEAT),
                      ("Spotlight", OverlayStyle.HEAT), ("glow", OverlayStyle.HEAT)],
    "provider": [("cpu", Provider.CPU), ("cuda", Provider.CUDA), ("auto", Provider.AUTO),
                 ("gpu", Provider.AUTO), ("Provider.CPU", Provider.AUTO), ("", Provider.AUTO)],
}


@pytest.mark.parametrize(("key", "written", "read"),
                         [(key, w, r) for key, pairs in HAND_EDITED.items() for w, r in pairs])
def test_a_hand_edited_choice_reads_back_as_one_of_the_choices(tmp_path: Path, key: str, written: str,
                                                               read: Enum) -> None:
    ini = tmp_path / "settings.ini"
    ini.write_text(f"[captioning]\n{key}={written}\nbeam_size=4\n")
    loaded = AppSettings.load(settings_store(ini))
    assert getattr(loaded, key) is read and loaded.beam_size == 4
    loaded.save(settings_store(ini))
    assert f"{key}={read.value}" in ini.read_text()  # the value, not the enum's repr


def test_choices_survive_a_save_and_a_restart(tmp_path: Path) -> None:
    ini = tmp_path / "settings.ini"
    AppSettings(provider=Provider.CPU, overlay_style=OverlayStyle.SPOTLIGHT).save(settings_store(ini))
    text = ini.read_text()
    assert "provider=cpu" in text and "overlay_style=spotlight" in text
    loaded = AppSettings.load(settings_store(ini))
    assert loaded.provider is Provider.CPU and loaded.overlay_style is OverlayStyle.SPOTLIGHT
    fresh = AppSettings.load(settings_store(tmp_path / "none.ini"))  # no file yet: the defaults
    assert fresh.provider is Provider.AUTO and fresh.overlay_style is OverlayStyle.HEAT


def test_provider_words_in_any_case_and_nothing_else() -> None:
    assert [as_provider(w) for w in ("auto", "CPU", Provider.CUDA)] == list(Provider)
    with pytest.raises(BundleError, match="unknown provider 'gpu'; choose auto, cpu or cuda"):
        choose_providers("GPU")
    assert choose_providers(Provider.CPU) == choose_providers("cpu") == ["CPUExecutionProvider"]
    assert all(pickle.loads(pickle.dumps(p)) is p for p in Provider)


def test_cli_provider_cpu_reaches_the_session_as_provider_cpu(monkeypatch: pytest.MonkeyPatch,
                                                              tiny_bundle: Path, tmp_path: Path) -> None:
    asked: list[object] = []

    def spy(preference: Provider | str = Provider.AUTO) -> list[str]:
        asked.append(preference)
        return choose_providers(preference)

    monkeypatch.setattr(captioner_module, "choose_providers", spy)
    photo = tmp_path / "red.jpg"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(photo)
    assert main(["caption", str(photo), "--model", str(tiny_bundle), "--provider", "cpu", "--quiet"]) == 0
    assert len(asked) == 1 and type(asked[0]) is Provider and asked[0] is Provider.CPU


def test_cli_provider_words_stay_the_same_and_cross_to_ray_workers_as_providers(tiny_bundle: Path) -> None:
    parser = build_parser()
    command = ["caption", "x.jpg", "--model", str(tiny_bundle)]
    assert parser.parse_args(command).provider == "auto"
    assert [parser.parse_args([*command, "--provider", w]).provider for w in ("auto", "cpu", "cuda")] == [
        "auto", "cpu", "cuda"]
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--provider", "gpu"])
    args = parser.parse_args([*command, "--provider", "cpu"])
    assert args.provider == "cpu" and chosen_provider(args) is Provider.CPU
    config = actor_config(args)
    sent = pickle.loads(pickle.dumps(asdict(config)))  # what each Ray worker is given
    assert ActorConfig(**sent).provider is Provider.CPU


def test_the_caption_process_is_told_a_value_and_says_where_it_runs(tiny_bundle: Path) -> None:
    service = CaptionService(tiny_bundle, provider=Provider.CPU)
    try:
        service.wait_ready()
        assert service.provider is Provider.CPU
    finally:
        service.close()
    with pytest.raises(BundleError, match="unknown provider 'gpu'"):
        CaptionService(tiny_bundle, provider="gpu")  # refused before a process starts

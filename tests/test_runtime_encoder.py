"""The shared U-Net encoder (encoder.py) in this process, on a tiny random keras-hub ResNet
saved with ``save_to_preset()``: strides, skips, grey slices, phases, save and reload,
and the one-line refusals. tests/test_template_encoders.py runs the projects end to end."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import runtime
import tiny_presets

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

encoder = runtime.load("encoder")
finetune = runtime.load("finetune")
errors = runtime.load("errors")


@pytest.fixture(scope="module")
def preset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_presets.save_resnet_pyramid(tmp_path_factory.mktemp("presets") / "resnet")


def _unet(preset: Path, channels: int):  # type: ignore[no-untyped-def]
    """A U-Net as the templates build it: encoder skips, then a decoder of one conv each."""
    import keras

    inputs = keras.Input((None, None, channels))
    skips, x = encoder.unet_encoder(inputs, str(preset), lambda x, level: keras.layers.Conv2D(
        4, 3, padding="same", name=f"stem{level}")(x))
    for level in reversed(range(len(skips))):
        x = keras.layers.UpSampling2D(name=f"up{level}")(x)
        x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level]])
    outputs = keras.layers.Conv2D(2, 1, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs), skips


def test_the_pyramid_feeds_one_skip_per_stride(preset: Path) -> None:
    net, skips = _unet(preset, channels=1)
    # strides 1 and 2 from the stem, 4, 8, 16 from P2..P4; P5 (stride 32) is the bottom
    assert [skip.shape[-1] for skip in skips] == [4, 4, 64, 16, 16]
    layer = finetune.find_backbone(net)
    assert isinstance(layer, encoder.PyramidEncoder) and layer.strides == [4, 8, 16, 32]
    assert net.get_layer("gray_to_rgb") is not None  # a grey slice goes in as RGB
    import keras_hub  # the converter's auto-name counts up within a process: find it by type

    [converter] = [layer for layer in net.layers
                   if isinstance(layer, keras_hub.layers.ResNetImageConverter)]
    assert converter.image_size is None  # scale and offset only: the mask keeps its grid
    out = net.predict(np.zeros((2, 64, 96, 1), "float32"), verbose=0)
    assert out.shape == (2, 64, 96, 2)
    described = finetune.describe(net, str(preset))["pretrained"]
    assert described == {"source": str(preset.resolve()), "backbone": "ResNetBackbone",
                         "parameters": 108736}


def test_phases_and_a_checkpoint_round_trip(preset: Path, tmp_path: Path) -> None:
    import keras

    net, _ = _unet(preset, channels=3)
    finetune.set_phase(net, frozen=True)
    encoder_ids = {id(v) for v in finetune.find_backbone(net).weights}
    assert not {id(v) for v in net.trainable_weights} & encoder_ids  # decoder and stem only
    finetune.set_phase(net, frozen=False)
    trainable = [v for v in net.trainable_weights if id(v) in encoder_ids]
    assert trainable and not any("moving" in v.path or "gamma" in v.path for v in trainable)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    before = net.predict(images, verbose=0)
    net.save(tmp_path / "unet.keras")
    loaded = keras.models.load_model(tmp_path / "unet.keras", safe_mode=True)
    assert isinstance(finetune.find_backbone(loaded), encoder.PyramidEncoder)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), before, atol=1e-5)


def test_a_fixed_frame_size_lets_bench_count_the_encoder(preset: Path) -> None:
    import keras

    measures = runtime.load("measures")
    inputs = keras.Input((64, 96, 3))
    skips, x = encoder.unet_encoder(inputs, str(preset), lambda x, level: x)
    net = keras.Model(inputs, x)
    backbone = finetune.find_backbone(net).backbone
    assert tuple(backbone.inputs[0].shape[1:3]) == (64, 96)  # built at the frame's size
    assert measures.forward_flops(net) == measures.forward_flops(backbone) > 1e6


def test_refusals_are_one_line(tmp_path: Path) -> None:
    import keras

    with pytest.raises(errors.ConfigError, match="model.encoder = .* is not a folder"):
        finetune.check_preset({"model": {"encoder": str(tmp_path / "nowhere")}})
    with pytest.raises(errors.ConfigError, match="model.encoder needs model.dims = 2"):
        finetune.check_preset({"model": {"encoder": "resnet_18_imagenet", "dims": 3}})
    finetune.check_preset({"model": {"encoder": "resnet_18_imagenet", "dims": 2}})
    assert finetune.preset_setting({"model": {"preset": "", "encoder": "x"}}) == (
        "model.encoder", "x")
    assert finetune.preset_setting({"model": {"dims": 2}}) == ("", "")
    with pytest.raises(errors.ConfigError) as raised:
        encoder.load_encoder(str(tmp_path), 3)  # a folder that holds no preset
    assert "(model.encoder)" in str(raised.value) and "\n" not in str(raised.value)
    inputs = keras.Input((None, None, 3))
    flat = keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))  # no feature pyramid
    with pytest.raises(errors.ConfigError, match="has no feature pyramid"):
        encoder.PyramidEncoder(flat)


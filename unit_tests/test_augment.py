"""Batched augmentations: exact crop/flip semantics, normalisation, resize."""

import torch

from fer.data.augment import FER_MEAN, FER_STD, batch_augment, sample_transform, to_model_input


def test_no_padding_no_flip_is_identity():
    x = torch.randint(0, 256, (4, 1, 48, 48), dtype=torch.uint8)
    assert torch.equal(batch_augment(x, padding=0, flip=False), x)


def test_each_output_is_a_shifted_possibly_flipped_crop():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (16, 1, 48, 48), dtype=torch.uint8)
    out = batch_augment(x, generator=g, padding=4)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(16):
        candidates = [
            padded[i, :, oy:oy + 48, ox:ox + 48] for oy in range(9) for ox in range(9)
        ]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(out[i], c) for c in candidates)


def test_seeded_and_varied():
    x = torch.randint(0, 256, (64, 1, 48, 48), dtype=torch.uint8)
    a = batch_augment(x, generator=torch.Generator().manual_seed(1))
    b = batch_augment(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    changed = (a != x).flatten(1).any(1).float().mean()
    assert changed > 0.8  # almost every image moved or flipped


def test_to_model_input_normalises_and_resizes():
    x = torch.full((2, 1, 48, 48), 255, dtype=torch.uint8)
    y = to_model_input(x)
    torch.testing.assert_close(y, torch.full_like(y, (1 - FER_MEAN) / FER_STD))
    assert to_model_input(x, image_size=96).shape == (2, 1, 96, 96)


def test_sample_transform_matches_batched_normalisation():
    from PIL import Image

    img = torch.randint(0, 256, (48, 48), dtype=torch.uint8)
    per_sample = sample_transform(train=False)(Image.fromarray(img.numpy()))
    batched = to_model_input(img.view(1, 1, 48, 48))[0]
    torch.testing.assert_close(per_sample, batched, atol=1e-5, rtol=1e-5)

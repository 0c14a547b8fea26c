import torch

from convladder.core.augment import augment_batch, random_crop, random_flip, shift


def test_flip_mirrors_about_half_and_keeps_pixels():
    images = torch.randint(0, 256, (400, 3, 8, 8), dtype=torch.uint8)
    out = random_flip(images, torch.Generator().manual_seed(0))
    flipped = [not torch.equal(a, b) for a, b in zip(images, out)]
    assert 150 < sum(flipped) < 250
    for a, b, f in zip(images, out, flipped):
        assert torch.equal(b, a.flip(2) if f else a)


def test_crop_is_a_shifted_window_of_the_reflect_padded_image():
    images = torch.randint(0, 256, (50, 3, 32, 32), dtype=torch.uint8)
    out = random_crop(images, 4, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(images.float(), (4, 4, 4, 4), mode="reflect").byte()
    for i in range(50):
        windows = [padded[i, :, y : y + 32, x : x + 32] for y in range(9) for x in range(9)]
        assert any(torch.equal(out[i], w) for w in windows)
    assert any(not torch.equal(out[i], images[i]) for i in range(50))


def test_crop_moves_at_most_pad_pixels():
    images = torch.randint(0, 256, (200, 3, 16, 16), dtype=torch.uint8)
    out = random_crop(images, 2, torch.Generator().manual_seed(2))
    moved = {(dy, dx) for i in range(200) for dy in range(-2, 3) for dx in range(-2, 3)
             if torch.equal(out[i], shift(images[i : i + 1], dy, dx)[0])}
    assert moved <= {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)} and len(moved) > 10
    assert torch.equal(random_crop(images, 0, torch.Generator().manual_seed(2)), images)


def test_shift_is_the_window_at_that_offset_of_the_reflect_padded_image():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    padded = torch.nn.functional.pad(images.float(), (2, 2, 2, 2), mode="reflect").byte()
    assert torch.equal(shift(images, 0, 0), images)
    for dy, dx in [(1, 0), (-1, 0), (0, 2), (-2, 1)]:
        assert torch.equal(shift(images, dy, dx), padded[:, :, 2 + dy : 2 + dy + 8, 2 + dx : 2 + dx + 8])


def test_same_seed_same_augmentation():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    a = augment_batch(images, torch.Generator().manual_seed(3))
    b = augment_batch(images, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)

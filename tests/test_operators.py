"""Forward models (CT projection, MRI k-space sampling) and the phantoms they are tested on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.transform import radon

from specfit.errors import SpecfitError
from specfit.operators.kspace import as_complex, as_real, kspace_mask, sample_kspace, zero_filled
from specfit.operators.projection import circle_mask, filtered_back_projection, project, projection_angles
from specfit.signals.phantoms import random_phantom, random_phantom_3d, shepp_logan

# Max |project - skimage radon| over the sinogram's max. Measured: about 2e-6 in float32 and 1e-14 in
# float64 (the same bilinear resampling), for 8 to 128 px and grid or off-grid angles.
RADON_TOLERANCE = {torch.float32: 2e-5, torch.float64: 1e-12}
OFF_GRID_ANGLES = np.array([3.7, 29.0, 45.0, 91.3, 133.33, 177.2, 200.5, -30.0])


def psnr(reconstruction: np.ndarray, reference: np.ndarray) -> float:
    """PSNR in dB for a reference in [0, 1]."""
    return float(10 * np.log10(1.0 / np.mean((reconstruction - reference) ** 2)))


# --- CT projection ---------------------------------------------------------------------------------


def test_projection_angles_cover_half_turn_without_endpoint() -> None:
    angles = projection_angles(20)
    assert angles.shape == (20,)
    np.testing.assert_allclose(angles.numpy(), np.arange(20) * 9.0)
    with pytest.raises(SpecfitError):
        projection_angles(0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("angles", [projection_angles(20).numpy(), OFF_GRID_ANGLES], ids=["grid", "off-grid"])
@pytest.mark.parametrize("name", ["shepp_logan", "random"])
def test_project_matches_skimage_radon(name: str, angles: np.ndarray, dtype: torch.dtype) -> None:
    image = shepp_logan(64) if name == "shepp_logan" else random_phantom(64, seed=3)
    expected = radon(image.astype(np.float64), theta=angles, circle=True).T
    sinogram = project(torch.tensor(image, dtype=dtype)[None, None], torch.tensor(angles))
    assert sinogram.shape == (1, 1, len(angles), 64)
    assert sinogram.dtype == dtype
    error = np.abs(sinogram[0, 0].double().numpy() - expected).max() / expected.max()
    assert error < RADON_TOLERANCE[dtype]


@pytest.mark.parametrize("size", [9, 16])
def test_project_matches_radon_at_odd_and_even_sizes(size: int) -> None:
    image = random_phantom(size, seed=size)
    sinogram = project(torch.tensor(image, dtype=torch.float64)[None, None], torch.tensor(OFF_GRID_ANGLES))
    expected = radon(image.astype(np.float64), theta=OFF_GRID_ANGLES, circle=True).T
    np.testing.assert_allclose(sinogram[0, 0].numpy(), expected, atol=1e-12)


def test_project_keeps_mass_at_every_angle() -> None:
    # Bilinear resampling of sharp edges gains or loses a little: measured at most 0.11 % here (a
    # scale error of one pixel in 64, e.g. from align_corners=True, would be about 3 %).
    image = torch.tensor(random_phantom(64, seed=0), dtype=torch.float64)
    sinogram = project(image[None, None], projection_angles(7))
    np.testing.assert_allclose(sinogram[0, 0].sum(dim=-1).numpy(), image.sum().item(), rtol=5e-3)


def test_project_is_batched() -> None:
    phantoms = [torch.tensor(random_phantom(24, seed=seed)) for seed in range(4)]
    images = torch.stack(phantoms).reshape(2, 2, 24, 24)
    angles = torch.tensor(OFF_GRID_ANGLES)
    together = project(images, angles)
    assert together.shape == (2, 2, len(angles), 24)
    for b in range(2):
        for c in range(2):
            alone = project(images[b : b + 1, c : c + 1], angles)[0, 0]
            torch.testing.assert_close(together[b, c], alone)


def test_project_chunks_many_angles(monkeypatch: pytest.MonkeyPatch) -> None:
    images = torch.tensor(random_phantom(16, seed=1))[None, None]
    angles = projection_angles(13)
    whole = project(images, angles)
    monkeypatch.setattr("specfit.operators.projection._CHUNK_ELEMENTS", 3 * 16 * 16)  # 3 angles per call
    torch.testing.assert_close(project(images, angles), whole)


def test_project_is_differentiable() -> None:
    noise = torch.rand(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    image = (noise * circle_mask(8)).requires_grad_()
    angles = torch.tensor([0.0, 17.0, 60.0, 123.4])
    assert torch.autograd.gradcheck(lambda x: project(x, angles), (image,))


def test_project_rejects_bad_input() -> None:
    with pytest.raises(SpecfitError, match="square"):
        project(torch.zeros(1, 1, 8, 9), projection_angles(4))
    with pytest.raises(SpecfitError, match="square"):
        project(torch.zeros(8, 8), projection_angles(4))
    with pytest.raises(SpecfitError, match="angles"):
        project(torch.zeros(1, 1, 8, 8), torch.zeros(0))


def test_circle_mask_is_skimage_reconstruction_circle() -> None:
    for size in (8, 9):
        mask = circle_mask(size).numpy()
        rows, cols = np.ogrid[:size, :size]
        centre, radius = size // 2, size // 2
        np.testing.assert_array_equal(mask, (rows - centre) ** 2 + (cols - centre) ** 2 <= radius**2)
    assert circle_mask(8).dtype == torch.bool


def test_filtered_back_projection_needs_many_angles() -> None:
    image = shepp_logan(128)
    quality = {}
    for count in (180, 20):
        angles = projection_angles(count)
        sinogram = project(torch.tensor(image)[None, None], angles)[0, 0].numpy()
        reconstruction = filtered_back_projection(sinogram, angles.numpy())
        assert reconstruction.shape == (128, 128)
        quality[count] = psnr(reconstruction, image)
    # Measured: 29.95 dB at 180 angles, 19.95 dB at 20 (streaks).
    assert quality[180] > 28.0
    assert quality[20] < 23.0
    with pytest.raises(SpecfitError):
        filtered_back_projection(np.zeros((5, 16)), np.zeros(4))


# --- MRI k-space -----------------------------------------------------------------------------------


def test_kspace_mask_fraction_seed_and_dc() -> None:
    shape = (6, 7, 8)
    mask = kspace_mask(shape, 0.3, seed=5)
    assert mask.shape == shape and mask.dtype == torch.bool
    assert int(mask.sum()) == round(0.3 * 6 * 7 * 8)
    assert mask[0, 0, 0]
    torch.testing.assert_close(kspace_mask(shape, 0.3, seed=5), mask)
    assert not torch.equal(kspace_mask(shape, 0.3, seed=6), mask)
    assert kspace_mask(shape, 1.0, seed=0).all()
    tiny = kspace_mask(shape, 1e-6, seed=0)
    assert int(tiny.sum()) == 1 and tiny[0, 0, 0]
    for fraction in (0.0, -0.1, 1.5):
        with pytest.raises(SpecfitError):
            kspace_mask(shape, fraction, seed=0)


def test_sample_kspace_is_the_masked_orthonormal_dft() -> None:
    generator = torch.Generator().manual_seed(0)
    volumes = torch.rand(2, 3, 6, 7, 8, dtype=torch.float64, generator=generator)
    mask = kspace_mask((6, 7, 8), 0.25, seed=1)
    samples = sample_kspace(volumes, mask)
    assert samples.shape == (2, 3, int(mask.sum())) and samples.is_complex()
    expected = np.fft.fftn(volumes.numpy(), axes=(2, 3, 4), norm="ortho")[:, :, mask.numpy()]
    np.testing.assert_allclose(samples.numpy(), expected, atol=1e-12)
    other = torch.rand(2, 3, 6, 7, 8, dtype=torch.float64, generator=generator)
    torch.testing.assert_close(
        sample_kspace(2.0 * volumes - 3.0 * other, mask), 2.0 * samples - 3.0 * sample_kspace(other, mask)
    )
    # Orthonormal: the full transform keeps the energy.
    full = sample_kspace(volumes, kspace_mask((6, 7, 8), 1.0, seed=0))
    torch.testing.assert_close(full.abs().square().sum(), volumes.square().sum())


def test_sample_kspace_is_differentiable() -> None:
    volume = torch.rand(1, 1, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    mask = kspace_mask((4, 5), 0.5, seed=3)
    assert torch.autograd.gradcheck(lambda x: as_real(sample_kspace(x, mask)), (volume.requires_grad_(),))


def test_zero_filled_inverts_a_full_mask_and_zeroes_missing_coefficients() -> None:
    volumes = torch.tensor(random_phantom_3d(12, seed=0))[None, None].repeat(2, 1, 1, 1, 1)
    full = kspace_mask((12, 12, 12), 1.0, seed=0)
    torch.testing.assert_close(zero_filled(sample_kspace(volumes, full), full), volumes, atol=1e-5, rtol=0)
    mask = kspace_mask((12, 12, 12), 0.2, seed=0)
    partial = zero_filled(sample_kspace(volumes, mask), mask)
    assert partial.shape == volumes.shape and not partial.is_complex()
    spectrum = np.fft.fftn(volumes.numpy(), axes=(2, 3, 4), norm="ortho") * mask.numpy()
    expected = np.fft.ifftn(spectrum, axes=(2, 3, 4), norm="ortho").real
    np.testing.assert_allclose(partial.numpy(), expected, atol=1e-5)


def test_as_real_round_trip() -> None:
    samples = torch.complex(torch.arange(6.0), -torch.arange(6.0)).reshape(1, 2, 3)
    pairs = as_real(samples)
    assert pairs.shape == (1, 2, 3, 2)
    np.testing.assert_array_equal(pairs[..., 1].numpy(), -pairs[..., 0].numpy())
    torch.testing.assert_close(as_complex(pairs), samples)


def test_kspace_rejects_mismatched_input() -> None:
    mask = kspace_mask((4, 4), 0.5, seed=0)
    with pytest.raises(SpecfitError):
        sample_kspace(torch.zeros(1, 1, 4, 5), mask)
    with pytest.raises(SpecfitError):
        sample_kspace(torch.zeros(1, 1, 4, 4), mask.float())
    samples = sample_kspace(torch.zeros(1, 1, 4, 4), mask)
    with pytest.raises(SpecfitError):
        zero_filled(samples[..., :-1], mask)
    with pytest.raises(SpecfitError):
        zero_filled(samples.real, mask)


# --- phantoms --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [16, 64, 400])
def test_shepp_logan(size: int) -> None:
    image = shepp_logan(size)
    assert image.shape == (size, size) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0 and image.max() > 0.4
    assert not image[~circle_mask(size).numpy()].any()
    np.testing.assert_array_equal(shepp_logan(size), image)


@pytest.mark.parametrize("size", [15, 64])
def test_random_phantom(size: int) -> None:
    image = random_phantom(size, seed=7)
    assert image.shape == (size, size) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() == 1.0
    assert len(np.unique(image)) > 5
    assert not image[~circle_mask(size).numpy()].any()
    np.testing.assert_array_equal(random_phantom(size, seed=7), image)
    assert not np.array_equal(random_phantom(size, seed=8), image)


@pytest.mark.parametrize("size", [15, 32])
def test_random_phantom_3d(size: int) -> None:
    volume = random_phantom_3d(size, seed=7)
    assert volume.shape == (size, size, size) and volume.dtype == np.float32
    assert volume.min() >= 0.0 and volume.max() == 1.0
    assert len(np.unique(volume)) > 5
    rows, cols, slices = np.ogrid[:size, :size, :size]
    centre = size // 2
    outside = (rows - centre) ** 2 + (cols - centre) ** 2 + (slices - centre) ** 2 > centre**2
    assert not volume[outside].any()
    np.testing.assert_array_equal(random_phantom_3d(size, seed=7), volume)
    assert not np.array_equal(random_phantom_3d(size, seed=8), volume)


def test_phantoms_reject_tiny_sizes() -> None:
    for make in (shepp_logan, lambda size: random_phantom(size, 0), lambda size: random_phantom_3d(size, 0)):
        with pytest.raises(SpecfitError):
            make(3)

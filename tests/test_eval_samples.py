"""Sample-based scores: mode coverage by hand, energy distance and curve distance closed forms."""

import numpy as np

from jaxgen.data import toy
from jaxgen.eval import distance_to_curve, energy_distance, mode_coverage


def test_mode_coverage_by_hand():
    centers, std = toy.ring8_centers(), 0.01
    samples = np.array([
        centers[0] + [0.02, 0.0],  # 2 std from mode 0: high quality
        centers[0] + [0.0, 0.029],  # 2.9 std: high quality
        centers[3] + [0.031, 0.0],  # 3.1 std: not high quality, so mode 3 is not captured
        centers[5],  # exactly on mode 5
        [0.0, 0.0],  # the centre of the ring: far from every mode
    ])
    report = mode_coverage(samples, centers, std)
    assert report["modes"] == 2
    np.testing.assert_allclose(report["high_quality"], 3 / 5)
    assert report["counts"][0] == 2 and report["counts"][5] == 1 and sum(report["counts"]) == 3
    q = np.array([2, 1]) / 3  # reverse KL to the uniform over 8 modes
    np.testing.assert_allclose(report["reverse_kl"], np.sum(q * np.log(q * 8)), rtol=1e-6)


def test_true_mixture_samples_cover_everything():
    for make, name in ((toy.ring8, "ring8"), (toy.grid25, "grid25")):
        points, _ = make(np.random.default_rng(0), 2500)
        centers, std = toy.mixture_modes(name)
        report = mode_coverage(points, centers, std)
        assert report["modes"] == len(centers)
        assert report["high_quality"] > 0.98  # P(chi_2 < 3) = 1 - exp(-4.5) = 0.989
        assert report["reverse_kl"] < 0.01


def test_energy_distance_closed_form():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 1))
    assert abs(energy_distance(x, x)) < 1e-4
    # Point masses at 0 and at 1: 2|0 - 1| - 0 - 0 = 2.
    np.testing.assert_allclose(energy_distance(np.zeros((5, 2)), np.ones((4, 2)) / np.sqrt(2)),
                               2.0, rtol=1e-4)
    shifted = energy_distance(x, x + 1.0)
    assert shifted > 0.3 and energy_distance(x, rng.standard_normal((3000, 1))) < 0.02


def test_distance_to_curve():
    curve = toy.helix_curve()
    on_curve = toy.helix_points(np.array([0.3, 4.0, 15.0]))
    np.testing.assert_allclose(distance_to_curve(on_curve, curve), 0.0, atol=2e-3)
    # Moving radially outward by 0.1 from the unit-radius helix: distance 0.1.
    outward = on_curve * np.array([1.1, 1.1, 1.0])
    np.testing.assert_allclose(distance_to_curve(outward, curve), 0.1, atol=2e-3)

"""Surface reflectance of typical targets in blue, green, red, nir, swir16 and swir22 (library
spectra, rounded), shared by the tests that paint synthetic scenes."""

from __future__ import annotations

BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
SPECTRA: dict[str, tuple[float, ...]] = {
    "water": (0.06, 0.05, 0.03, 0.015, 0.01, 0.005),
    "vegetation": (0.03, 0.07, 0.035, 0.38, 0.18, 0.08),
    "bare": (0.10, 0.14, 0.18, 0.26, 0.32, 0.28),
    "cloud": (0.55, 0.56, 0.58, 0.60, 0.45, 0.35),
    "snow-ice": (0.9, 0.9, 0.88, 0.8, 0.08, 0.05),
    "built-up": (0.12, 0.13, 0.14, 0.18, 0.25, 0.22),
}

"""vawgan: voice conversion with a speaker-conditioned VAE-WGAN-GP.

Heavy modules (torch, librosa) are imported lazily: ``import vawgan`` is cheap.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "convert_audio"]


def convert_audio(in_path, out_path, target=None, **options):
    """Convert one audio file to ``target``'s voice with the packaged model (or
    ``model=``): :func:`vawgan.convert.convert_audio`, imported when first called."""
    from .convert import convert_audio as _convert_audio

    return _convert_audio(in_path, out_path, target, **options)

"""vawgan: voice conversion with a speaker-conditioned VAE-WGAN-GP.

Heavy modules (torch, librosa) are imported lazily: ``import vawgan`` is cheap.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

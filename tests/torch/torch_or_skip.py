"""Imported first by the PyTorch tests: exits 77 (meson's skip) when
python3-torch is missing, so a machine without it skips rather than fails."""
import sys

try:
    import torch  # noqa: F401
except ImportError:
    print("SKIP: python3-torch is not installed (apt-get install python3-torch); "
          "the PyTorch interchange test needs it")
    sys.exit(77)

"""minivid: an educational from-scratch text-to-video stack in PyTorch.

Import the submodule you need (`from minivid import common`); this file deliberately
imports nothing so that `import minivid.world` never pays for torch-heavy modules.
"""

__version__ = "0.1.0"

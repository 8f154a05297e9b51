"""hfmtl: fine-tune one Hugging Face encoder on several NLP tasks at once.

Import the parts you need (`hfmtl.config`, `hfmtl.modeling`, ...); importing the package itself is cheap.
"""

__version__ = "0.1.0"

"""The PyTorch companion of the LatentMAS playground: evaluates, checks and continues an exported run
(docs/run-bundle.md) on transformers + peft, data-parallel under accelerate."""
__version__ = "0.1.0"

"""selfsup: self-supervised learning from BERT to GPT, the library behind the course."""

__version__ = "0.1.0"

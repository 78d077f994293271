"""Chapter 7, GPT: next-token prediction (接龙), decoding, in-context learning and induction heads.

    from selfsup.experiments import ch7
    r = ch7.next_token(seed=0)       the shared tiny GPT (trained once, cached) and what it predicts
    r = ch7.sampling(seed=0)         greedy, temperature, top-k and top-p decoding of it
    r = ch7.icl(seed=0)              accuracy against the number of shots; the weights' sha256 before and after
    r = ch7.induction_heads(seed=0)  2-layer vs 1-layer attention-only transformers on repeated sequences

The code lives in ch7_lm.py (the model and what it is trained on), ch7_gpt.py (the first two experiments),
ch7_icl.py and ch7_induction.py.
"""

from selfsup.experiments.ch7_gpt import gpt_attention, next_token, sampling
from selfsup.experiments.ch7_icl import icl
from selfsup.experiments.ch7_induction import induction_heads
from selfsup.experiments.ch7_lm import GPTSettings, gpt_tokenizer, toy_gpt

__all__ = [
    "GPTSettings",
    "gpt_attention",
    "gpt_tokenizer",
    "icl",
    "induction_heads",
    "next_token",
    "sampling",
    "toy_gpt",
]

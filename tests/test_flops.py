"""selfsup.flops against a count by hand: every Linear once, a tied decoder once, BERT's MLM head at its share."""

import pytest

from selfsup import flops
from selfsup.bert import BertConfig, BertForPretraining
from selfsup.experiments.finetuning import head_for
from selfsup.experiments.pretraining import PretrainSettings
from selfsup.gpt import GPT, GPTConfig

D, L, V, T = 32, 2, 100, 16
PER_LAYER = 3 * D * D + D * D + 2 * D * 4 * D  # fused QKV, output projection, the MLP's two Linears
ATTENTION = 12 * L * T * D  # Q Kᵀ and A V: 2 * 2 * T * D per token and layer, x 3 with the backward


def test_gpt_counts_each_layer_and_the_tied_head_once():
    gpt = GPT(GPTConfig(vocab_size=V, d_model=D, n_heads=4, n_layers=L, max_len=T))
    assert flops.matmul_params(gpt) == L * PER_LAYER + V * D
    assert flops.train_flops_per_token(gpt, T) == 6 * (L * PER_LAYER + V * D) + ATTENTION


def test_bert_counts_the_mlm_head_at_the_masked_share():
    bert = BertForPretraining(BertConfig(vocab_size=V, d_model=D, n_heads=4, n_layers=L, d_ff=4 * D, max_len=T))
    body = L * PER_LAYER + D * D + 2 * D  # the layers, the pooler and the NSP head (every token's share)
    mlm = D * D + V * D  # the transform and the decoder tied to the word embeddings
    assert flops.train_flops_per_token(bert, T) == pytest.approx(6 * (body + 0.15 * mlm) + ATTENTION)
    assert flops.train_flops_per_token(bert, T, mlm_rate=1.0) == pytest.approx(6 * (body + mlm) + ATTENTION)
    assert flops.train_flops(bert, tokens=1000, seq_len=T) == pytest.approx(1000 * flops.train_flops_per_token(bert, T))


def test_a_task_head_reads_its_sizes_from_the_body():
    s = PretrainSettings(d_model=D, n_layers=L, n_heads=4)
    qa = head_for("qa", None, V, s)  # body + a (D -> 2) start/end layer
    assert flops.train_flops_per_token(qa, T) == 6 * (L * PER_LAYER + D * D + 2 * D) + ATTENTION


def test_six_n_d():
    assert flops.params_flops(110e6, 1e9) == pytest.approx(6.6e17)

"""Chapter 7's experiments at the "tiny" preset (seconds each), and the pieces they are built from.

The book's build asserts the book-preset checks; these tests check structure, ranges and determinism.
"""

import math

import pytest
import torch

from selfsup.experiments import ch7, ch7_gpt, ch7_icl, ch7_induction, ch7_lm
from selfsup.layers import causal_mask

pytestmark = pytest.mark.usefixtures("private_cache")  # conftest: a fresh model cache for this module


# The word-level tokenizer and the mixture ----------------------------------------------------------------------


def test_tokenizer_one_token_per_word_and_newline():
    tok = ch7_lm.gpt_tokenizer()
    a, b = ch7_lm.people_world("all").people[:2]
    text = f"{a.name} was born in {a.born_in} .\n{b.name} -> {b.job}\n16 ->"
    ids = ch7_lm.encode(text)
    assert ch7_lm.EOT_ID not in ids  # every word of the world is in the vocabulary
    assert len(ids) == len(text.split()) + 2  # the words, and the newlines as tokens of their own
    assert ch7_lm.tokens(ids)[7] == "\\n"
    assert tok.convert_ids_to_tokens(ch7_lm.EOT_ID) == ch7_lm.EOT
    assert len(tok) == 634  # 431 ToyWorld words, the numbers 0-199, "->", the newline, <|endoftext|>


def test_people_halves_split_the_world():
    even, odd = ch7_lm.people_world("even"), ch7_lm.people_world("odd")
    names_even, names_odd = {p.name for p in even.people}, {p.name for p in odd.people}
    assert not names_even & names_odd
    assert len(names_even | names_odd) == len(ch7_lm.people_world("all").people)
    with pytest.raises(ValueError, match="part must be"):
        ch7_lm.people_world("some")


def test_mixture_blocks_have_seq_len_and_contain_prompts():
    s = ch7_lm.PRESETS["tiny"]
    blocks = ch7_lm.mixture(s, seed=0)
    assert all(len(b) == s.seq_len for b in blocks)
    arrow = ch7_lm.encode("->")[0]
    with_prompts = sum(arrow in b for b in blocks)
    assert 0.3 * len(blocks) < with_prompts < 0.8 * len(blocks)  # icl_share 0.5
    assert blocks == ch7_lm.mixture(s, seed=0)


def test_unigram_loss_is_below_uniform():
    blocks = ch7_lm.document_blocks(100, 64, seed=0)
    assert ch7_gpt.unigram_loss(blocks, blocks[:10]) < math.log(len(ch7_lm.gpt_tokenizer()))


# In-context learning pieces --------------------------------------------------------------------------------------


def test_items_round_trip_the_prompt_text():
    for family, people in (("relation", "odd"), ("mapping", "all")):
        items = ch7_icl.make_items(family, 3, 2, people, "t")
        for it in items:
            assert len(it.examples) == 3
            assert it.text.endswith(f"{it.query} ->")
            assert isinstance(ch7_icl.answer_id(it), int)
    relation_items = ch7_icl.make_items("relation", 2, 2, "odd", "t")
    assert {it.relation for it in relation_items} == set(ch7_lm.RELATIONS)
    odd = {p.name for p in ch7_lm.people_world("odd").people}
    assert all(it.query in odd for it in relation_items)


def test_weights_sha256_sees_a_changed_weight_and_finetuning_copies():
    model, _ = ch7_lm.toy_gpt(seed=0, preset="tiny")
    before = ch7_icl.weights_sha256(model)
    tuned = ch7_icl.finetune_on_examples(model, [("alice smith", "lyon"), ("bob jones", "paris")], 1e-2, 0)
    assert ch7_icl.weights_sha256(model) == before  # the original is untouched
    assert ch7_icl.weights_sha256(tuned) != before
    assert ch7_icl.weights_sha256(ch7_icl.finetune_on_examples(model, [], 1e-2, 0)) == before


# Induction-head pieces -------------------------------------------------------------------------------------------


def test_attention_weights_reproduce_the_layer_output():
    torch.manual_seed(0)
    model = ch7_induction.AttnOnlyTransformer(ch7_induction.AttnOnlyConfig(16, d_model=16, n_heads=2, max_len=8))
    x = torch.randn(2, 8, 16)
    attn = model.attns[0]
    w = ch7_induction.attention_weights(attn, x)  # (B, H, T, T)
    assert torch.allclose(w.sum(-1), torch.ones(2, 2, 8))
    assert not (w * ~causal_mask(8, 8)).any()  # nothing attends to the future
    v = attn._heads(attn.qkv(x).split(16, dim=-1)[2])
    by_hand = attn.proj((w @ v).transpose(1, 2).reshape(2, 8, 16))
    assert torch.allclose(by_hand, attn(x, is_causal=True)[0], atol=1e-6)


def test_gpt_attention_is_causal_and_matches_the_model():
    model, _ = ch7_lm.toy_gpt(seed=0, preset="tiny")
    ids = torch.tensor([ch7_lm.encode("anna larsen was born in paris .")])
    att = ch7_gpt.gpt_attention(model, ids)  # (layers, heads, T, T)
    t = ids.size(1)
    assert att.shape == (model.config.n_layers, model.config.n_heads, t, t)
    assert torch.allclose(att.sum(-1), torch.ones(att.shape[:-1]), atol=1e-5)
    assert not (att * ~causal_mask(t, t)).any()
    # the same per-layer inputs, run through the blocks, give the model's own output
    x = model.tok_emb(ids) + model.pos_emb(torch.arange(t))
    for block in model.layers:
        x, _ = block(x, is_causal=True)
    assert torch.allclose(model.lm_head(model.ln_f(x)), model(ids).logits, atol=1e-5)


def test_periodic_and_repeated_sequences():
    g = torch.Generator().manual_seed(0)
    x = ch7_induction.periodic_sequences(5, 64, 10, g)
    assert x.shape == (5, 64) and x.max() < 10
    for row in x:
        period = next(p for p in range(4, 33) if torch.equal(row[p:], row[:-p]))
        assert 4 <= period <= 32
    r = ch7_induction.repeated_sequences(3, 8, 10, g)
    assert torch.equal(r[:, :8], r[:, 8:])


def test_steepest_window():
    steps = list(range(0, 100, 10))
    loss = [4, 4, 4, 4, 3, 1, 0.5, 0.5, 0.5, 0.5]
    assert ch7_induction.steepest_window(steps, loss, 20) == (30, 3.0)


# The experiments, tiny ------------------------------------------------------------------------------------------------


def test_next_token_tiny():
    r = ch7.next_token(seed=0, preset="tiny")
    assert len(r.loss) == ch7_lm.PRESETS["tiny"].steps
    assert r.uniform_loss == pytest.approx(math.log(634))
    assert 0 < r.unigram_loss < r.uniform_loss
    assert r.heldout_loss < r.uniform_loss  # 30 steps already learn word frequencies
    assert 0 <= r.birthplace_accuracy <= 1 and 0 < r.majority_birthplace < 1
    assert r.trace_tokens[0] == ch7_lm.EOT and r.trace_tokens[3] == "was" and len(r.trace_tokens) == 4 + 12
    assert all(len(top) == 5 and top[0][1] >= top[-1][1] for top in r.trace_top)
    assert len(ch7.next_token.outcomes(r)) == 2


def test_sampling_tiny_is_deterministic():
    r = ch7.sampling(seed=0, preset="tiny")
    assert set(r.birthplace_accuracy) == set(ch7_gpt.DECODINGS) == set(r.distinct_bigrams)
    assert all(0 <= v <= 1 for v in (*r.birthplace_accuracy.values(), *r.distinct_bigrams.values()))
    assert all(len(s) == 4 for s in r.samples.values())
    assert r.distinct_bigrams["greedy"] <= r.distinct_bigrams["T=1.5"]
    assert ch7.sampling(seed=0, preset="tiny").samples == r.samples


def test_icl_tiny():
    r = ch7.icl(seed=0, preset="tiny")
    n = len(ch7_icl.SHOTS)
    assert r.shots == list(ch7_icl.SHOTS)
    assert len(r.seen) == len(r.unseen) == len(r.finetune) == len(r.in_context_same_prompts) == n
    assert len(r.mapping) == n - 1 and set(r.seen_by_relation) == set(ch7_lm.RELATIONS)
    assert all(0 <= a <= 1 for a in (*r.seen, *r.unseen, *r.mapping, *r.finetune))
    assert r.sha_before == r.sha_after != r.sha_finetuned  # this check holds at any size
    assert r.finetune_lr in ch7_icl.PRESETS["tiny"].lrs
    assert r.example_prompt.endswith("->")
    assert len(ch7.icl.outcomes(r)) == 5


def test_induction_heads_tiny():
    s = ch7_induction.PRESETS["tiny"]
    r = ch7.induction_heads(seed=0, preset="tiny")
    n_evals = s.steps // s.eval_every + 1
    assert r.steps == list(range(0, s.steps + 1, s.eval_every))
    for curves in (r.repeated_loss, r.first_half_loss, r.induction_score, r.prev_score):
        assert set(curves) == {"2 layers", "1 layer"} and all(len(c) == n_evals for c in curves.values())
    assert [len(x) for x in r.final_induction["2 layers"]] == [s.n_heads, s.n_heads]
    assert len(r.final_induction["1 layer"]) == 1
    assert r.repeated_loss["2 layers"][0] == pytest.approx(r.chance_loss, abs=0.2)  # untrained: chance
    assert all(0 <= v <= 1 for v in r.induction_score["2 layers"])
    t = 2 * s.show_half
    assert len(r.patterns) == 3 and all(len(p) == t and len(p[0]) == t for p in r.patterns.values())
    assert len(r.snapshots) == len(r.snapshot_steps) == s.snapshots
    assert r.snapshot_steps[0] == 0 and r.snapshot_steps[-1] == s.steps
    again = ch7.induction_heads(seed=0, preset="tiny")
    assert again.repeated_loss == r.repeated_loss

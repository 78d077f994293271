"""Conversion between selfsup models and Hugging Face `transformers`, with outputs equal to float precision.

`transformers` is imported inside the functions: it is slow to import and only conversion needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from selfsup.bert import BertConfig, BertForPretraining
from selfsup.gpt import GPT, GPTConfig

if TYPE_CHECKING:
    import transformers

# selfsup activation name <-> transformers `hidden_act`. HF's "gelu" is the exact erf GELU, like ours;
# "gelu_pytorch_tanh" is the same tanh approximation; "gelu_new" computes it by hand (equal to ~1e-7).
_BERT_ACT_TO_HF = {"gelu": "gelu", "gelu_tanh": "gelu_pytorch_tanh", "relu": "relu"}
_BERT_ACT_FROM_HF = {"gelu": "gelu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh", "relu": "relu"}


def _load_like(target: torch.nn.Module, sd: dict[str, Tensor], source: torch.nn.Module) -> torch.nn.Module:
    """Load `sd` strictly into `target`, placed on the source's device and dtype and in its train/eval mode."""
    ref = next(source.parameters())
    target.to(device=ref.device, dtype=ref.dtype)
    target.load_state_dict(sd, strict=True)
    return target.train(source.training)


def bert_config_to_hf(config: BertConfig) -> transformers.BertConfig:
    """Translate a selfsup BertConfig into a transformers BertConfig (post-LN only, as HF BERT is)."""
    import transformers

    if config.norm_first:
        raise ValueError("norm_first=True has no transformers BERT equivalent; HF BERT is post-LN (norm_first=False)")
    if config.causal:
        raise ValueError("causal=True has no transformers BertModel equivalent here; convert a bidirectional BERT")
    return transformers.BertConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.d_model,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        intermediate_size=config.d_ff,
        hidden_act=_BERT_ACT_TO_HF[config.activation],
        hidden_dropout_prob=config.dropout,
        attention_probs_dropout_prob=config.dropout,
        max_position_embeddings=config.max_len,
        type_vocab_size=config.type_vocab_size,
        initializer_range=config.init_std,
        layer_norm_eps=config.layer_norm_eps,
        pad_token_id=config.pad_token_id,
        tie_word_embeddings=True,
    )


def bert_config_from_hf(hf_config: transformers.BertConfig) -> BertConfig:
    """Translate a transformers BertConfig into a selfsup BertConfig."""
    act = hf_config.hidden_act
    if act not in _BERT_ACT_FROM_HF:
        raise ValueError(f"hidden_act={act!r} has no selfsup equivalent; supported: {sorted(_BERT_ACT_FROM_HF)}")
    if getattr(hf_config, "is_decoder", False):
        raise ValueError("is_decoder=True (a causal BERT) has no selfsup BERT equivalent")
    # selfsup uses one dropout rate; HF's hidden dropout is the one that acts on the residual stream.
    return BertConfig(
        vocab_size=hf_config.vocab_size,
        d_model=hf_config.hidden_size,
        n_heads=hf_config.num_attention_heads,
        n_layers=hf_config.num_hidden_layers,
        d_ff=hf_config.intermediate_size,
        max_len=hf_config.max_position_embeddings,
        type_vocab_size=hf_config.type_vocab_size,
        dropout=float(hf_config.hidden_dropout_prob),
        layer_norm_eps=hf_config.layer_norm_eps,
        pad_token_id=hf_config.pad_token_id if hf_config.pad_token_id is not None else 0,
        activation=_BERT_ACT_FROM_HF[act],
        init_std=hf_config.initializer_range,
    )


def _bert_key_pairs(n_layers: int) -> list[tuple[str, str]]:
    """(selfsup name, HF name) for every tensor that maps one to one; qkv is handled apart."""
    pairs = [
        ("bert.embeddings.word.weight", "bert.embeddings.word_embeddings.weight"),
        ("bert.embeddings.position.weight", "bert.embeddings.position_embeddings.weight"),
        ("bert.embeddings.token_type.weight", "bert.embeddings.token_type_embeddings.weight"),
        ("bert.embeddings.ln.weight", "bert.embeddings.LayerNorm.weight"),
        ("bert.embeddings.ln.bias", "bert.embeddings.LayerNorm.bias"),
        ("bert.pooler.weight", "bert.pooler.dense.weight"),
        ("bert.pooler.bias", "bert.pooler.dense.bias"),
        ("mlm.dense.weight", "cls.predictions.transform.dense.weight"),
        ("mlm.dense.bias", "cls.predictions.transform.dense.bias"),
        ("mlm.ln.weight", "cls.predictions.transform.LayerNorm.weight"),
        ("mlm.ln.bias", "cls.predictions.transform.LayerNorm.bias"),
        ("mlm.decoder.bias", "cls.predictions.bias"),
        ("nsp.weight", "cls.seq_relationship.weight"),
        ("nsp.bias", "cls.seq_relationship.bias"),
    ]
    per_layer = [
        ("attn.proj", "attention.output.dense"),
        ("ln1", "attention.output.LayerNorm"),
        ("ff.fc1", "intermediate.dense"),
        ("ff.fc2", "output.dense"),
        ("ln2", "output.LayerNorm"),
    ]
    for i in range(n_layers):
        for ours, theirs in per_layer:
            for p in ("weight", "bias"):
                pairs.append((f"bert.layers.{i}.{ours}.{p}", f"bert.encoder.layer.{i}.{theirs}.{p}"))
    return pairs


def bert_to_hf(model: BertForPretraining) -> transformers.BertForPreTraining:
    """Copy a selfsup BertForPretraining into a new transformers BertForPreTraining (same device, dtype, mode)."""
    import transformers

    cfg = model.config
    ours = model.state_dict()
    hf = transformers.BertForPreTraining(bert_config_to_hf(cfg))
    sd: dict[str, Tensor] = {theirs: ours[mine] for mine, theirs in _bert_key_pairs(cfg.n_layers)}
    for i in range(cfg.n_layers):
        # Our fused qkv Linear stacks the query, key and value projections along the output dimension.
        for p in ("weight", "bias"):
            q, k, v = ours[f"bert.layers.{i}.attn.qkv.{p}"].chunk(3, dim=0)
            for name, t in zip(("query", "key", "value"), (q, k, v), strict=True):
                sd[f"bert.encoder.layer.{i}.attention.self.{name}.{p}"] = t
    # HF ties the decoder to the word embeddings and cls.predictions.bias; fill the tied names too.
    sd["cls.predictions.decoder.weight"] = sd["bert.embeddings.word_embeddings.weight"]
    sd["cls.predictions.decoder.bias"] = sd["cls.predictions.bias"]
    return _load_like(hf, sd, model)


def bert_from_hf(hf_model: transformers.BertForPreTraining) -> BertForPretraining:
    """Copy a transformers BertForPreTraining into a new selfsup BertForPretraining (same device, dtype, mode)."""
    cfg = bert_config_from_hf(hf_model.config)
    theirs = hf_model.state_dict()
    if not torch.equal(theirs["cls.predictions.decoder.weight"], theirs["bert.embeddings.word_embeddings.weight"]):
        raise ValueError("the HF model's MLM decoder is not tied to its word embeddings; selfsup BERT always ties them")
    model = BertForPretraining(cfg)
    sd: dict[str, Tensor] = {mine: theirs[hf] for mine, hf in _bert_key_pairs(cfg.n_layers)}
    sd["mlm.decoder.weight"] = theirs["bert.embeddings.word_embeddings.weight"]
    for i in range(cfg.n_layers):
        prefix = f"bert.encoder.layer.{i}.attention.self"
        for p in ("weight", "bias"):
            q, k, v = (theirs[f"{prefix}.{n}.{p}"] for n in ("query", "key", "value"))
            sd[f"bert.layers.{i}.attn.qkv.{p}"] = torch.cat([q, k, v])  # fused: (3C, C) weight, (3C,) bias
    return _load_like(model, sd, hf_model)


# selfsup activation <-> transformers `activation_function`. GPT-2 checkpoints name the tanh GELU "gelu_new";
# "gelu_pytorch_tanh" is the same function through PyTorch's kernel; HF's "gelu" is the exact erf GELU.
_GPT_ACT_TO_HF = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}
_GPT_ACT_FROM_HF = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}


def gpt_config_to_hf(config: GPTConfig) -> transformers.GPT2Config:
    """Translate a selfsup GPTConfig into a transformers GPT2Config (no special token ids: GPT has none)."""
    import transformers

    return transformers.GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.max_len,
        n_embd=config.d_model,
        n_layer=config.n_layers,
        n_head=config.n_heads,
        n_inner=config.d_ff,
        activation_function=_GPT_ACT_TO_HF[config.activation],
        resid_pdrop=config.dropout,
        embd_pdrop=config.dropout,
        attn_pdrop=config.dropout,
        layer_norm_epsilon=config.layer_norm_eps,
        initializer_range=config.init_std,
        bos_token_id=None,
        eos_token_id=None,
        tie_word_embeddings=True,
    )


def gpt_config_from_hf(hf_config: transformers.GPT2Config) -> GPTConfig:
    """Translate a transformers GPT2Config into a selfsup GPTConfig; options GPT lacks raise a ValueError."""
    act = hf_config.activation_function
    if act not in _GPT_ACT_FROM_HF:
        raise ValueError(
            f"activation_function={act!r} has no selfsup equivalent; supported: {sorted(_GPT_ACT_FROM_HF)}"
        )
    unsupported = {
        "scale_attn_weights": (hf_config.scale_attn_weights, True),
        "scale_attn_by_inverse_layer_idx": (hf_config.scale_attn_by_inverse_layer_idx, False),
        "add_cross_attention": (hf_config.add_cross_attention, False),
        "tie_word_embeddings": (hf_config.tie_word_embeddings, True),
    }
    for name, (value, needed) in unsupported.items():
        if value != needed:
            raise ValueError(f"{name}={value!r} has no selfsup GPT equivalent; it needs {name}={needed!r}")
    # selfsup uses one dropout rate; HF's residual dropout is the one that acts on the residual stream.
    return GPTConfig(
        vocab_size=hf_config.vocab_size,
        d_model=hf_config.n_embd,
        n_heads=hf_config.n_head,
        n_layers=hf_config.n_layer,
        d_ff=hf_config.n_inner if hf_config.n_inner is not None else 4 * hf_config.n_embd,
        max_len=hf_config.n_positions,
        dropout=float(hf_config.resid_pdrop),
        layer_norm_eps=hf_config.layer_norm_epsilon,
        activation=_GPT_ACT_FROM_HF[act],
        bias=True,
        init_std=hf_config.initializer_range,
    )


def _gpt_key_pairs(n_layers: int) -> list[tuple[str, str, bool]]:
    """(selfsup name, HF name, transpose?) for every tensor. GPT-2's Conv1D stores weights (in, out), so they flip."""
    pairs = [
        ("tok_emb.weight", "transformer.wte.weight", False),
        ("pos_emb.weight", "transformer.wpe.weight", False),
        ("ln_f.weight", "transformer.ln_f.weight", False),
        ("ln_f.bias", "transformer.ln_f.bias", False),
    ]
    per_layer = [
        ("ln1", "ln_1", False),
        ("attn.qkv", "attn.c_attn", True),  # both stack query, key, value along the output dimension
        ("attn.proj", "attn.c_proj", True),
        ("ln2", "ln_2", False),
        ("ff.fc1", "mlp.c_fc", True),
        ("ff.fc2", "mlp.c_proj", True),
    ]
    for i in range(n_layers):
        for ours, theirs, is_conv1d in per_layer:
            pairs.append((f"layers.{i}.{ours}.weight", f"transformer.h.{i}.{theirs}.weight", is_conv1d))
            pairs.append((f"layers.{i}.{ours}.bias", f"transformer.h.{i}.{theirs}.bias", False))
    return pairs


def gpt_to_hf(model: GPT) -> transformers.GPT2LMHeadModel:
    """Copy a selfsup GPT into a new transformers GPT2LMHeadModel (same device, dtype and train/eval mode).

    A GPT built with bias=False gets zero biases, since GPT-2's Conv1D layers always have one.
    """
    import transformers

    cfg = model.config
    ours = model.state_dict()
    hf = transformers.GPT2LMHeadModel(gpt_config_to_hf(cfg))
    theirs = hf.state_dict()
    sd: dict[str, Tensor] = {}
    for mine, hf_name, transpose in _gpt_key_pairs(cfg.n_layers):
        t = ours.get(mine)
        if t is None:  # a bias that our bias=False model does not have
            t = torch.zeros_like(theirs[hf_name], device=ours["tok_emb.weight"].device)
        sd[hf_name] = t.t() if transpose else t
    sd["lm_head.weight"] = sd["transformer.wte.weight"]  # tied in both models
    return _load_like(hf, sd, model)


def gpt_from_hf(hf_model: transformers.GPT2LMHeadModel) -> GPT:
    """Copy a transformers GPT2LMHeadModel into a new selfsup GPT (same device, dtype and train/eval mode)."""
    cfg = gpt_config_from_hf(hf_model.config)
    theirs = hf_model.state_dict()
    if not torch.equal(theirs["lm_head.weight"], theirs["transformer.wte.weight"]):
        raise ValueError("the HF model's lm_head is not tied to its token embeddings; selfsup GPT always ties them")
    model = GPT(cfg)
    sd: dict[str, Tensor] = {}
    for mine, hf_name, transpose in _gpt_key_pairs(cfg.n_layers):
        t = theirs[hf_name]
        sd[mine] = t.t() if transpose else t
    sd["lm_head.weight"] = sd["tok_emb.weight"]
    return _load_like(model, sd, hf_model)

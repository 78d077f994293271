"""Wrong answers for 02-attention: each must lose points on its function's tests."""


def _attention(scale="math.sqrt(q.size(-1))", fill='float("-inf")', mask="~key_padding_mask", dim="-1"):
    return f"""def attention(q, k, v, key_padding_mask=None):
    scores = q @ k.transpose(-2, -1) / {scale}
    if key_padding_mask is not None:
        scores = scores.masked_fill({mask}[:, None, None, :], {fill})
    weights = scores.softmax(dim={dim})
    return weights @ v, weights
"""


def _layer(qkv="q, k, v", proj="merge_heads(out) @ w_proj.T + b_proj", mask="attention_mask.bool()"):
    return f"""def self_attention_layer(x, attention_mask, w_qkv, b_qkv, w_proj, b_proj, n_heads):
    c = x.size(-1)
    {qkv} = (x @ w_qkv.T + b_qkv).split(c, dim=-1)
    mask = None if attention_mask is None else {mask}
    out, _ = attention(split_heads(q, n_heads), split_heads(k, n_heads), split_heads(v, n_heads), mask)
    return {proj}
"""


MUTANTS = {
    "attention-solution": [
        ("no 1/sqrt(D) scale", _attention(scale="1.0")),
        ("scaled by D instead of sqrt(D)", _attention(scale="q.size(-1)")),
        ("padding mask ignored", _attention(mask="torch.zeros_like(key_padding_mask)")),
        ("padded scores set to 0 instead of -inf", _attention(fill="0.0")),
        ("mask inverted (True taken as padding)", _attention(mask="key_padding_mask")),
        ("softmax over the queries (dim=-2)", _attention(dim="-2")),
    ],
    "split_heads-solution": [
        (
            "reshape straight to (B, H, T, D)",
            """def split_heads(x, n_heads):
    b, t, c = x.shape
    return x.reshape(b, n_heads, t, c // n_heads)
""",
        ),
        (
            "heads interleaved (channel i goes to head i % H)",
            """def split_heads(x, n_heads):
    b, t, c = x.shape
    return x.view(b, t, c // n_heads, n_heads).permute(0, 3, 1, 2)
""",
        ),
        (
            "head axis left in place: (B, T, H, D)",
            """def split_heads(x, n_heads):
    b, t, c = x.shape
    return x.view(b, t, n_heads, c // n_heads)
""",
        ),
    ],
    "merge_heads-solution": [
        (
            "reshape without moving the head axis back",
            """def merge_heads(x):
    b, h, t, d = x.shape
    return x.reshape(b, t, h * d)
""",
        ),
        (
            "heads interleaved",
            """def merge_heads(x):
    b, h, t, d = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, t, h * d)
""",
        ),
    ],
    "self_attention_layer-solution": [
        ("Q, K, V taken in the wrong order (K, Q, V)", _layer(qkv="k, q, v")),
        ("no output projection", _layer(proj="merge_heads(out)")),
        ("padding mask not passed on", _layer(mask="None")),
        ("output projection not transposed", _layer(proj="merge_heads(out) @ w_proj + b_proj")),
    ],
}

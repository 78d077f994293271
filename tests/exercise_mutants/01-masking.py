"""Wrong answers for 01-masking: each must lose points on its function's tests."""

# ruff: noqa: E501 (the mutants are student code, written as students write it)

_MASK_HEAD = """def mask_tokens(input_ids, attention_mask, special_ids, mask_token_id, vocab_size, generator, mlm_probability=0.15):
"""

_MASK_BODY = """    special = torch.tensor(sorted(special_ids), dtype=input_ids.dtype)
    candidates = CANDIDATES
    picked = candidates & (torch.rand(input_ids.shape, generator=generator) < mlm_probability)
    u = torch.rand(input_ids.shape, generator=generator)
    to_mask = picked & (u < MASK_SHARE)
    to_random = picked & (u >= MASK_SHARE) & (u < 0.9)
    allowed = torch.tensor(ALLOWED, dtype=input_ids.dtype)
    masked = input_ids.clone()
    masked[to_mask] = mask_token_id
    draws = torch.randint(len(allowed), (int(to_random.sum()),), generator=generator)
    masked[to_random] = allowed[draws]
    labels = LABELS
    return masked, labels
"""


def _mask(
    candidates="~torch.isin(input_ids, special) & attention_mask.bool()",
    mask_share="0.8",
    allowed="[i for i in range(vocab_size) if i not in set(special_ids)]",
    labels="torch.where(picked, input_ids, torch.full_like(input_ids, -100))",
):
    body = (
        _MASK_BODY.replace("CANDIDATES", candidates)
        .replace("MASK_SHARE", mask_share)
        .replace("ALLOWED", allowed)
        .replace("LABELS", labels)
    )
    return _MASK_HEAD + body


MUTANTS = {
    "mask_tokens-solution": [
        ("special tokens can be masked", _mask(candidates="attention_mask.bool()")),
        ("padding (attention_mask) ignored", _mask(candidates="~torch.isin(input_ids, special)")),
        ("100% [MASK], no random or kept tokens", _mask(mask_share="1.0")),
        ("random replacements drawn from the whole vocabulary", _mask(allowed="list(range(vocab_size))")),
        ("labels keep the original id everywhere", _mask(labels="input_ids.clone()")),
        (
            "labels are the masked ids, not the originals",
            _mask(labels="torch.where(picked, masked, torch.full_like(input_ids, -100))"),
        ),
        ("global RNG instead of the generator", _mask().replace("generator=generator", "generator=None")),
    ],
    "build_pair-solution": [
        (
            "type ids switch one token late (first [SEP] typed as B: off by one)",
            """def build_pair(ids_a, ids_b, cls_id, sep_id):
    input_ids = [cls_id, *ids_a, sep_id, *ids_b, sep_id]
    token_type_ids = [0] * (len(ids_a) + 1) + [1] * (len(ids_b) + 2)
    return input_ids, token_type_ids
""",
        ),
        (
            "no final [SEP]",
            """def build_pair(ids_a, ids_b, cls_id, sep_id):
    input_ids = [cls_id, *ids_a, sep_id, *ids_b]
    token_type_ids = [0] * (len(ids_a) + 2) + [1] * len(ids_b)
    return input_ids, token_type_ids
""",
        ),
        (
            "last [SEP] typed as segment A",
            """def build_pair(ids_a, ids_b, cls_id, sep_id):
    input_ids = [cls_id, *ids_a, sep_id, *ids_b, sep_id]
    token_type_ids = [0] * (len(ids_a) + 2) + [1] * len(ids_b) + [0]
    return input_ids, token_type_ids
""",
        ),
        (
            "returns tensors instead of lists",
            """def build_pair(ids_a, ids_b, cls_id, sep_id):
    input_ids = [cls_id, *ids_a, sep_id, *ids_b, sep_id]
    token_type_ids = [0] * (len(ids_a) + 2) + [1] * (len(ids_b) + 1)
    return torch.tensor(input_ids), torch.tensor(token_type_ids)
""",
        ),
    ],
    "nsp_pairs-solution": [
        (
            "random B may come from the same document",
            """def nsp_pairs(documents, generator, p_random=0.5):
    pairs = []
    for d, doc in enumerate(documents):
        for i in range(len(doc) - 1):
            if torch.rand(1, generator=generator).item() < p_random:
                other = documents[int(torch.randint(len(documents), (1,), generator=generator))]
                while not other:
                    other = documents[int(torch.randint(len(documents), (1,), generator=generator))]
                pairs.append((doc[i], other[int(torch.randint(len(other), (1,), generator=generator))], 1))
            else:
                pairs.append((doc[i], doc[i + 1], 0))
    return pairs
""",
        ),
        (
            "labels swapped (1 = is next)",
            """def nsp_pairs(documents, generator, p_random=0.5):
    nonempty = [j for j, doc in enumerate(documents) if doc]
    pairs = []
    for d, doc in enumerate(documents):
        for i in range(len(doc) - 1):
            if torch.rand(1, generator=generator).item() < p_random:
                others = [j for j in nonempty if j != d]
                other = documents[others[int(torch.randint(len(others), (1,), generator=generator))]]
                pairs.append((doc[i], other[int(torch.randint(len(other), (1,), generator=generator))], 0))
            else:
                pairs.append((doc[i], doc[i + 1], 1))
    return pairs
""",
        ),
        (
            "random B is always the first sentence of the next document",
            """def nsp_pairs(documents, generator, p_random=0.5):
    pairs = []
    for d, doc in enumerate(documents):
        for i in range(len(doc) - 1):
            if torch.rand(1, generator=generator).item() < p_random:
                j = (d + 1) % len(documents)
                while not documents[j]:
                    j = (j + 1) % len(documents)
                pairs.append((doc[i], documents[j][0], 1))
            else:
                pairs.append((doc[i], doc[i + 1], 0))
    return pairs
""",
        ),
        (
            "every sentence is an A, the last one paired with a random sentence",
            """def nsp_pairs(documents, generator, p_random=0.5):
    nonempty = [j for j, doc in enumerate(documents) if doc]
    pairs = []
    for d, doc in enumerate(documents):
        for i in range(len(doc)):
            if i == len(doc) - 1 or torch.rand(1, generator=generator).item() < p_random:
                others = [j for j in nonempty if j != d]
                other = documents[others[int(torch.randint(len(others), (1,), generator=generator))]]
                pairs.append((doc[i], other[int(torch.randint(len(other), (1,), generator=generator))], 1))
            else:
                pairs.append((doc[i], doc[i + 1], 0))
    return pairs
""",
        ),
    ],
    "mlm_loss-solution": [
        (
            "averaged over every position (unpicked count as 0)",
            """def mlm_loss(logits, labels):
    losses = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100, reduction="none")
    return losses.mean()
""",
        ),
        (
            "summed instead of averaged",
            """def mlm_loss(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100, reduction="sum")
""",
        ),
        (
            "negative log of the logits, no softmax",
            """def mlm_loss(logits, labels):
    keep = labels != -100
    return -logits[keep].gather(-1, labels[keep][:, None]).mean()
""",
        ),
    ],
}

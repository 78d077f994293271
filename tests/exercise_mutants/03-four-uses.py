"""Wrong answers for 03-four-uses: each must lose points on its function's tests."""

# ruff: noqa: E501 (the mutants are student code, written as students write it)

_SPAN = """def best_span(start_logits, end_logits, context_mask, max_answer_len=30):
    b, t = start_logits.shape
    scores = start_logits[:, :, None] + end_logits[:, None, :]
    pos = torch.arange(t)
    length = pos[None, :] - pos[:, None]
    allowed = ALLOWED
    allowed = allowed[None] & MASK
    flat = scores.masked_fill(~allowed, float("-inf")).flatten(1).argmax(dim=1)
    flat = flat.masked_fill(~allowed.flatten(1).any(dim=1), 0)
    return flat // t, flat % t
"""


def _span(
    allowed="(length >= 0) & (length < max_answer_len)", mask="context_mask[:, :, None] & context_mask[:, None, :]"
):
    return _SPAN.replace("ALLOWED", allowed).replace("MASK", mask)


_PAIR = """def pair_logits(model, firsts, seconds):
    enc = tokenizer(ENCODE, padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(ARGS).logits
"""

_FT = """def finetune_classifier(model, train_features, steps=200, lr=1e-3, batch_size=16, seed=0):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    model.train()
    losses = []
    for _ in range(steps):
        idx = torch.randint(len(train_features), (batch_size,), generator=g).tolist()
        batch = ft.collate([train_features[i] for i in idx])
        SHUFFLE
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        STEP
        losses.append(loss.item())
    return losses
"""


def _ft(lr="lr", shuffle="pass", step="opt.step()"):
    return _FT.replace("LR", lr).replace("SHUFFLE", shuffle).replace("STEP", step)


MUTANTS = {
    "cls_logits-solution": [
        (
            "mean over the tokens instead of [CLS]",
            """def cls_logits(hidden, weight, bias):
    return hidden.mean(dim=1) @ weight.T + bias
""",
        ),
        (
            "the last token instead of [CLS]",
            """def cls_logits(hidden, weight, bias):
    return hidden[:, -1] @ weight.T + bias
""",
        ),
        (
            "bias forgotten",
            """def cls_logits(hidden, weight, bias):
    return hidden[:, 0] @ weight.T
""",
        ),
    ],
    "tag_logits_and_loss-solution": [
        (
            "loss averaged over every token (untagged count as 0)",
            """def tag_logits_and_loss(hidden, weight, bias, labels):
    logits = hidden @ weight.T + bias
    losses = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100, reduction="none")
    return logits, losses.mean()
""",
        ),
        (
            "loss averaged per sentence, then over sentences",
            """def tag_logits_and_loss(hidden, weight, bias, labels):
    logits = hidden @ weight.T + bias
    per_sentence = [F.cross_entropy(logits[b], labels[b], ignore_index=-100) for b in range(len(labels)) if (labels[b] != -100).any()]
    return logits, torch.stack(per_sentence).mean()
""",
        ),
        (
            "the [CLS] logits copied to every token",
            """def tag_logits_and_loss(hidden, weight, bias, labels):
    logits = (hidden[:, :1] @ weight.T + bias).expand(-1, hidden.size(1), -1)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100)
    return logits, loss
""",
        ),
    ],
    "pair_logits-solution": [
        (
            "no token_type_ids",
            _PAIR.replace("ENCODE", "list(firsts), list(seconds)").replace(
                "ARGS", 'input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]'
            ),
        ),
        (
            "no attention_mask (padding attended to)",
            _PAIR.replace("ENCODE", "list(firsts), list(seconds)").replace(
                "ARGS", 'input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"]'
            ),
        ),
        (
            "the two sentences joined into one segment",
            _PAIR.replace("ENCODE", "[a + ' ' + b for a, b in zip(firsts, seconds)]").replace("ARGS", "**enc"),
        ),
    ],
    "best_span-solution": [
        (
            "start and end taken by separate argmaxes",
            """def best_span(start_logits, end_logits, context_mask, max_answer_len=30):
    s = start_logits.masked_fill(~context_mask, float("-inf")).argmax(dim=1)
    e = end_logits.masked_fill(~context_mask, float("-inf")).argmax(dim=1)
    return s, e
""",
        ),
        ("end before start allowed", _span(allowed="(length.abs() < max_answer_len)")),
        ("one token too long allowed (off by one)", _span(allowed="(length >= 0) & (length <= max_answer_len)")),
        ("context mask ignored", _span(mask="torch.ones_like(context_mask)[:, :, None]")),
    ],
    "finetune_classifier-solution": [
        ("no optimizer step", _ft(step="pass")),
        (
            "labels shuffled against the inputs",
            _ft(shuffle='batch["labels"] = batch["labels"][torch.randperm(len(idx), generator=g)]'),
        ),
        ("learning rate ignored (1e-7)", _ft(lr="1e-7")),
    ],
}

"""Wrong answers for 07-gpt: each must lose points on its function's tests."""

_LOSS = """def next_token_loss(logits, input_ids, attention_mask=None):
    targets = TARGETS
    if attention_mask is not None:
        targets = targets.masked_fill(MASK == 0, -100)
    return F.cross_entropy(LOGITS.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
"""


def _loss(targets="input_ids[:, 1:]", mask="attention_mask[:, 1:]", logits="logits[:, :-1]"):
    return _LOSS.replace("TARGETS", targets).replace("MASK", mask).replace("LOGITS", logits)


_FILTER = """def filter_logits(logits, top_k=None, top_p=None):
    if top_k is not None:
        kth = torch.topk(logits, min(KK, logits.size(-1)), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = BEFORE
        drop = (before >= top_p).scatter(-1, order, before >= top_p)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits
"""


def _filter(k="top_k", before="probs.cumsum(dim=-1) - probs"):
    return _FILTER.replace("KK", k).replace("BEFORE", before)


_SAMPLE = """def sample_next_token(logits, generator, temperature=1.0, top_k=None, top_p=None):
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = PROBS
    return torch.multinomial(probs, 1, generator=GEN).squeeze(-1)
"""


def _sample(probs="filter_logits(logits / temperature, top_k, top_p).softmax(dim=-1)", gen="generator"):
    return _SAMPLE.replace("PROBS", probs).replace("GEN", gen)


_ACC = """def accuracy_by_shots(model, shots, n=50, family="linear", seed=0):
    result = {}
    for k in shots:
        prompts = icl_prompts(family, n, K, seed=seed)
        right = sum(ANSWER == p.answer for p in prompts)
        result[KEY] = right / DENOM
    return result
"""


def _acc(k="k", answer="model(build_prompt(p.examples, p.query)).strip()", key="int(k)", denom="n"):
    return _ACC.replace("K,", f"{k},").replace("ANSWER", answer).replace("KEY", key).replace("DENOM", denom)


MUTANTS = {
    "causal_mask-solution": [
        (
            "diagonal excluded (a token cannot see itself)",
            """def causal_mask(t):
    return torch.ones(t, t, dtype=torch.bool).tril(diagonal=-1)
""",
        ),
        (
            "upper triangle (tokens see the future)",
            """def causal_mask(t):
    return torch.ones(t, t, dtype=torch.bool).triu()
""",
        ),
        (
            "a float mask of ones and zeros",
            """def causal_mask(t):
    return torch.ones(t, t).tril()
""",
        ),
    ],
    "next_token_loss-solution": [
        (
            "no shift: each position scored against its own token",
            _loss(targets="input_ids", mask="attention_mask", logits="logits"),
        ),
        (
            "shifted the wrong way",
            _loss(targets="input_ids[:, :-1]", mask="attention_mask[:, :-1]", logits="logits[:, 1:]"),
        ),
        ("padding targets not ignored", _loss(mask="torch.ones_like(attention_mask[:, 1:])")),
        ("padding mask not shifted with the targets", _loss(mask="attention_mask[:, :-1]")),
    ],
    "filter_logits-solution": [
        ("top-k keeps k + 1 tokens", _filter(k="top_k + 1")),
        ("top-p drops the token that crosses p", _filter(before="probs.cumsum(dim=-1)")),
        (
            "top-p on the unsorted probabilities",
            """def filter_logits(logits, top_k=None, top_p=None):
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        probs = logits.softmax(dim=-1)
        logits = logits.masked_fill(probs.cumsum(dim=-1) - probs >= top_p, float("-inf"))
    return logits
""",
        ),
    ],
    "sample_next_token-solution": [
        ("temperature ignored", _sample(probs="filter_logits(logits, top_k, top_p).softmax(dim=-1)")),
        (
            "multiplied by the temperature",
            _sample(probs="filter_logits(logits * temperature, top_k, top_p).softmax(dim=-1)"),
        ),
        ("filters ignored", _sample(probs="(logits / temperature).softmax(dim=-1)")),
        ("global RNG instead of the generator", _sample(gen="None")),
        (
            "filter before the temperature",
            _sample(probs="(filter_logits(logits, top_k, top_p) / temperature).softmax(dim=-1)"),
        ),
    ],
    "build_prompt-solution": [
        (
            "a space after the final arrow",
            """def build_prompt(examples, query):
    return "".join(f"{x} -> {y}\\n" for x, y in examples) + f"{query} -> "
""",
        ),
        (
            "examples joined without newlines",
            """def build_prompt(examples, query):
    return " ".join(f"{x} -> {y}" for x, y in examples) + f" {query} ->"
""",
        ),
        (
            "'=>' instead of '->'",
            """def build_prompt(examples, query):
    return "".join(f"{x} => {y}\\n" for x, y in examples) + f"{query} =>"
""",
        ),
    ],
    "accuracy_by_shots-solution": [
        ("answer not stripped", _acc(answer="model(build_prompt(p.examples, p.query))")),
        ("one shot fewer than asked (off by one)", _acc(k="max(k - 1, 0)")),
        ("string keys", _acc(key="str(k)")),
        ("integer division", _acc(denom="n").replace("right / n", "right // n")),
    ],
}

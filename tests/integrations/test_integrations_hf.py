"""The Hugging Face callback on a tiny BERT built from a config (no download), real Trainer, no mocks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import infoplane

transformers = pytest.importorskip("transformers")

pytestmark = pytest.mark.slow

N, L, VOCAB = 64, 8, 100


def _model():
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=16, num_labels=3,
    )
    return transformers.BertForTokenClassification(config)


def _data():
    """Synthetic token task: the class of a token is its id mod 3 (token ids drawn with a seed)."""
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(1, VOCAB, (N, L), generator=gen)
    mask = torch.ones_like(ids)
    rows = [{"input_ids": ids[i], "attention_mask": mask[i], "labels": ids[i] % 3} for i in range(N)]
    return ids, mask, rows


def _trainer(tmp_path, model, rows, cb, epochs=2):
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=epochs, per_device_train_batch_size=16,
        learning_rate=1e-3, report_to="none", use_cpu=True, save_strategy="no", logging_strategy="no",
        disable_tqdm=True, seed=0,
    )
    return transformers.Trainer(model=model, args=args, train_dataset=rows, callbacks=[cb])


def test_trainer_records_each_encoder_layer(tmp_path):
    from infoplane.integrations.huggingface import InformationPlaneCallback

    ids, mask, rows = _data()
    model = _model()
    y = (ids[:, 0] % 3).numpy()  # one class per sequence: its first token's
    layers = [
        "bert.encoder.layer.?",  # the two BertLayer modules (a "*" would also match their submodules)
        infoplane.Layer("bert.encoder.layer.0.attention.self", output=0),  # an element of a tuple output
        infoplane.Layer("bert", output="last_hidden_state", name="bert_out"),  # a field of a ModelOutput
    ]
    cb = InformationPlaneCallback(layers=layers, probe=rows, labels=y, store=tmp_path / "s.zarr")
    _trainer(tmp_path, model, rows, cb).train()

    store = infoplane.open_store(tmp_path / "s.zarr")
    assert store.epochs == [0, 1, 2]
    assert store.layers == [
        "bert.encoder.layer.0", "bert.encoder.layer.1", "bert.encoder.layer.0.attention.self[0]", "bert_out"
    ]
    assert store.activations(2, "bert.encoder.layer.0").shape == (N, L * 32)  # (N, L, H) flattened
    np.testing.assert_array_equal(store.labels, y)
    assert store.metadata["probe_keys"] == ["input_ids", "attention_mask"]  # labels not fed to the model
    # BERT's last_hidden_state (a ModelOutput field) is the last encoder layer's output, unchanged.
    np.testing.assert_array_equal(store.activations(2, "bert_out"), store.activations(2, "bert.encoder.layer.1"))
    # The last recording is the trained model's: a direct probe pass on it gives the same numbers.
    final = infoplane.record(model, {"input_ids": ids, "attention_mask": mask}, layers)
    for layer in store.layers:
        np.testing.assert_array_equal(store.activations(2, layer), final[layer])
    assert not np.array_equal(store.activations(0, "bert_out"), store.activations(2, "bert_out"))
    assert model.training  # the Trainer's mode survived the probe passes


def test_every_k_steps_and_a_dict_probe(tmp_path):
    from infoplane.integrations.huggingface import InformationPlaneCallback

    ids, mask, rows = _data()
    cb = InformationPlaneCallback(
        layers="bert.encoder.layer.1", probe={"input_ids": ids, "attention_mask": mask}, schedule=2, unit="step"
    )
    _trainer(tmp_path, _model(), rows, cb, epochs=1).train()  # 64 rows / 16 = 4 steps
    assert cb.store.epochs == [0, 2, 4]


def test_missing_layer_fails_at_train_begin(tmp_path):
    from infoplane.integrations.huggingface import InformationPlaneCallback

    _, _, rows = _data()
    model = _model()
    before = model.classifier.weight.detach().clone()
    cb = InformationPlaneCallback(layers="bert.encoder.layer.7", probe=rows)
    with pytest.raises(KeyError, match=r"'bert.encoder.layer.7'.*Closest: .*'bert.encoder.layer.1'"):
        _trainer(tmp_path, model, rows, cb).train()
    assert torch.equal(model.classifier.weight, before)  # no step was taken


def test_probe_inputs_from_a_dataset_of_dicts():
    from infoplane.integrations.huggingface import probe_inputs

    rows = [{"input_ids": [1, 2, 3], "attention_mask": [1, 1, 0], "label": k % 2} for k in range(5)]
    inputs, labels = probe_inputs(rows)
    assert list(inputs) == ["input_ids", "attention_mask"] and inputs["input_ids"].shape == (5, 3)
    np.testing.assert_array_equal(labels, [0, 1, 0, 1, 0])  # one class per row: the probe labels
    _, token_labels = probe_inputs([{"input_ids": [1, 2], "labels": [0, 1]}])
    assert token_labels is None  # per-token labels are not probe labels
    with pytest.raises(ValueError, match=r"'input_ids' has rows of different shapes.*pad the probe"):
        probe_inputs([{"input_ids": [1, 2, 3]}, {"input_ids": [4, 5]}])
    with pytest.raises(ValueError, match="no model inputs left"):
        probe_inputs({"labels": torch.zeros(3)})

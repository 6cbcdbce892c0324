"""The serving check's verdicts on candidates that must never be pushed."""

import tensorflow as tf

from components.serving_check import check_model, read_warmup, write_warmup


class _Doubler(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(self, x):
        return {"click_probability": x * 2.0}  # 0.8 -> 1.6: not a probability


def test_a_model_that_does_not_load_is_refused(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"not a saved model")
    ok, reason, _ = check_model(str(tmp_path), latency_budget_ms=100, repeats=3)
    assert not ok and reason.startswith("model does not load")


def test_wrong_outputs_and_missing_signatures_are_refused(tmp_path):
    module = _Doubler()
    tf.saved_model.save(
        module, str(tmp_path), signatures={"serving_default": module.serve.get_concrete_function()}
    )
    write_warmup(
        str(tmp_path),
        "m",
        [
            ("serving_default", {"x": tf.constant([0.1, 0.8])}),
            ("recommend", {"user_id": tf.constant(["u1"])}),
        ],
    )
    assert [s for s, _ in read_warmup(str(tmp_path))] == ["serving_default", "recommend"]
    ok, reason, p99 = check_model(str(tmp_path), latency_budget_ms=1000, repeats=3)
    assert not ok
    assert "values outside [0, 1]" in reason and "missing signature 'recommend'" in reason
    assert set(p99) == {"serving_default"}

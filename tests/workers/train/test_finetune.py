"""LoRA fine-tuning on the tiny fp32 model: the loss is on the assistant's tokens only, a few
steps lower the validation loss, and the saved adapter changes what the model writes after a
reload."""

import pytest
import torch

from workers.train.finetune import (
    Encoded,
    ExamplesError,
    LoraTrainConfig,
    chat_jsonl_read,
    example_encode,
    lora_train,
    validation_loss,
)

ANSWER = "Thank you for reaching out. Your refund is on its way."


def _chats(n: int) -> list[list[dict]]:
    questions = ["where is my refund", "refund status please", "I want my money back", "did you send the refund",
                 "refund not received", "when do I get my refund"]
    return [[{"role": "user", "content": questions[i % len(questions)]}, {"role": "assistant", "content": ANSWER}]
            for i in range(n)]


@pytest.fixture(scope="module")
def tiny_parts(tiny_lm):
    from transformers import AutoModelForCausalLM

    from generation.lm import tokenizer_get

    tokenizer = tokenizer_get(str(tiny_lm))

    def fresh():
        return AutoModelForCausalLM.from_pretrained(tiny_lm, dtype=torch.float32)

    return tokenizer, fresh


def test_loss_is_on_the_assistant_turn_only(tiny_parts):
    tokenizer, _ = tiny_parts
    encoded = example_encode(tokenizer, _chats(1)[0], max_tokens=256)
    targets = [t for t in encoded.labels if t != -100]
    assert tokenizer.decode(targets).startswith(ANSWER)
    assert tokenizer.decode(targets).endswith("<|im_end|>")  # it learns to stop
    prompt = tokenizer.decode(encoded.input_ids[: encoded.labels.index(targets[0])])  # noqa: E501
    assert prompt.endswith("<|im_start|>assistant\n") and "where is my refund" in prompt
    prompt_length = encoded.labels.index(targets[0])
    long_chat = [_chats(1)[0][0], {"role": "assistant", "content": ANSWER * 5}]
    short = example_encode(tokenizer, long_chat, max_tokens=prompt_length + 20)
    assert len(short.input_ids) == prompt_length + 20  # the completion is cut, the prompt kept
    assert short.input_ids[:prompt_length] == encoded.input_ids[:prompt_length]
    assert example_encode(tokenizer, _chats(1)[0], max_tokens=10) is None


def test_chat_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "chats.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
                    '{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(ExamplesError, match="line 2"):
        chat_jsonl_read(path)
    assert len(chat_jsonl_read(path, limit=1)) == 1


def test_few_steps_lower_the_loss_and_the_reloaded_adapter_changes_outputs(tiny_parts, tmp_path):
    from peft import PeftModel

    tokenizer, fresh = tiny_parts
    encoded = [example_encode(tokenizer, c, max_tokens=128) for c in _chats(8)]
    train, validation = encoded[:6], encoded[6:]
    points = []
    config = LoraTrainConfig(rank=8, alpha=16, lr=2e-2, batch_size=3, max_steps=5, epochs=10, warmup_steps=0,
                             eval_every=5, patience=3, seed=1)
    result = lora_train(fresh(), tokenizer, train, validation, config,
                        on_step=lambda step, loss, stats: points.append((step, loss)))
    metrics = result.metrics
    assert [s for s, _ in points] == [1, 2, 3, 4, 5]
    assert metrics["validation_loss_after"] < metrics["validation_loss_before"] - 0.5
    assert points[-1][1] < points[0][1]
    assert metrics["examples_per_second"] > 0 and metrics["tokens_per_second"] > 0
    result.model.save_pretrained(tmp_path / "adapter")

    prompt = tokenizer.apply_chat_template(_chats(1)[0][:1], add_generation_prompt=True, tokenize=False)
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])

    def greedy(model):
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False)
        return tokenizer.decode(out[0, ids.shape[1]:])

    reloaded = PeftModel.from_pretrained(fresh(), tmp_path / "adapter").eval()
    assert greedy(reloaded) != greedy(fresh().eval())
    assert validation_loss(reloaded, validation, pad_id=tokenizer.eos_token_id) == pytest.approx(
        metrics["validation_loss_after"], rel=1e-3)


def test_early_stopping_keeps_the_best_weights(tiny_parts):
    tokenizer, fresh = tiny_parts
    train = [example_encode(tokenizer, c, max_tokens=128) for c in _chats(4)]
    # Validation on a different answer: training on the refund answer makes it worse and worse.
    other = [[{"role": "user", "content": "hello"}, {"role": "assistant", "content": "Bananas grow in bunches."}]]
    validation = [example_encode(tokenizer, c, max_tokens=128) for c in other]
    config = LoraTrainConfig(lr=5e-2, batch_size=4, max_steps=30, epochs=100, warmup_steps=0, eval_every=1, patience=2)
    result = lora_train(fresh(), tokenizer, train, validation, config)
    metrics = result.metrics
    assert metrics["early_stopped"] and metrics["steps"] < 30
    best = min(h["validation_loss"] for h in result.history)
    assert metrics["validation_loss_after"] == pytest.approx(best, rel=1e-4)
    assert isinstance(train[0], Encoded)

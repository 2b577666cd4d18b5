"""A small byte-level BPE tokenizer trained on the corpus of a VAE (``tokenizers`` library).

SmolLM2's 49k-token vocabulary would make the VAE's embedding and output layers (and its softmax
on 2 CPU cores) ten times larger than the rest of the model; a 4-8k vocabulary trained on the
corpus covers it as well and is saved inside the checkpoint (``to_json`` / ``from_json``), so a
model always decodes with the tokenizer it was trained with. Byte-level: any text encodes (no
unknown characters) and decoding gives back the exact spacing and punctuation.

Pure ``tokenizers``: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)  # ids 0, 1, 2, 3 in this order


class TextTokenizer:
    """Text <-> token ids, with ``<bos>``/``<eos>`` framing done by the model, not here."""

    def __init__(self, tokenizer: Tokenizer):
        self._tokenizer = tokenizer
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = (tokenizer.token_to_id(t) for t in SPECIAL_TOKENS)
        if None in (self.pad_id, self.bos_id, self.eos_id, self.unk_id):
            raise ValueError(f"The tokenizer lacks one of the special tokens {SPECIAL_TOKENS}")

    @classmethod
    def train(cls, texts: Iterable[str], *, vocab_size: int = 6000, min_frequency: int = 2) -> TextTokenizer:
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return cls(tokenizer)

    @classmethod
    def from_json(cls, data: str) -> TextTokenizer:
        return cls(Tokenizer.from_str(data))

    def to_json(self) -> str:
        return self._tokenizer.to_str()

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self._tokenizer.encode_batch(list(texts))]

    def decode(self, ids: Sequence[int]) -> str:
        """Ids to text; special tokens are dropped, decoding stops at ``<eos>``."""
        kept = []
        for token_id in ids:
            if token_id == self.eos_id:
                break
            if token_id not in (self.pad_id, self.bos_id, self.unk_id):
                kept.append(int(token_id))
        return self._tokenizer.decode(kept).strip()

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return [self.decode(ids) for ids in batch]

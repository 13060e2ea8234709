"""Token streaming pieces: text deltas that hold back stop-string prefixes and partial UTF-8."""

from __future__ import annotations

from pulse.llm.streaming import IncrementalDecoder, TokenStreamer


def test_incremental_decoder_holds_back_stop_prefixes_and_partial_utf8():
    vocab = {1: "Sinus", 2: " rhy", 3: "thm", 4: "\ufffd", 5: "###", 9: "<eos>"}
    decoder = IncrementalDecoder(lambda ids: "".join(vocab[i] for i in ids), stops=["###"], eos_ids={9})
    out = [decoder.feed(t) for t in (1, 2, 3)]
    assert "".join(out) + decoder.flush() == "Sinus rhythm"
    decoder = IncrementalDecoder(lambda ids: "".join(vocab[i] for i in ids), stops=["###"], eos_ids={9})
    assert decoder.feed(1) == "Sin"  # the hold is len(stop) - 1 characters
    assert decoder.feed(5) == "us"
    assert decoder.stopped and decoder.feed(2) == ""
    plain = IncrementalDecoder(lambda ids: "".join(vocab[i] for i in ids), stops=[], eos_ids={9})
    assert plain.feed(4) == ""  # a partial UTF-8 character is not sent yet
    assert plain.feed(9) == "" and plain.stopped


def test_token_streamer_skips_the_prompt_and_ends_once():
    import torch

    tokens, ends = [], []
    streamer = TokenStreamer(tokens.append, lambda: ends.append(1))
    streamer.put(torch.tensor([[5, 6, 7]]))  # the prompt
    streamer.put(torch.tensor([8]))
    streamer.put(torch.tensor([9]))
    streamer.end()
    streamer.end()  # the engine also ends streams whose request never reached the model
    assert tokens == [8, 9] and ends == [1]

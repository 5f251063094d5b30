"""Tests of m4ser_lobes.aec: SelectiveAECDecoder (Eqs. 4–7) and gather_hosts."""

import pytest
import torch
from torch import nn

from m4ser_lobes.aec import SelectiveAECDecoder, gather_hosts
from m4ser_lobes.losses import aec_loss

D, V, BOS, EOS, PAD = 32, 50, 2, 3, 0


class ToyEmbedding(nn.Module):
    """Stands in for the text encoder's TE + PE; positions restart at 0 for every row."""

    def __init__(self, vocab=V, dim=D, max_positions=32):
        super().__init__()
        self.words = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(max_positions, dim)

    def forward(self, ids):  # [K,L] -> [K,L,E]
        return self.words(ids) + self.positions(torch.arange(ids.shape[1]))


def make(embed_dim=None, seed=0, **kwargs):
    torch.manual_seed(seed)
    decoder = SelectiveAECDecoder(D, V, embed_dim=embed_dim, nhead=4, dim_feedforward=64, **kwargs)
    embedding = ToyEmbedding(dim=embed_dim or D)
    return decoder, embedding


def _pad_mask(lengths, T):
    return torch.arange(T).unsqueeze(0) >= torch.tensor(lengths).unsqueeze(1)  # True = pad


def _inputs(K, L, T_t, seed=1):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, V, (K, L), generator=gen)
    ids[:, 0] = BOS
    host = torch.randn(K, D, generator=gen)
    memory = torch.randn(K, T_t, D, generator=gen)
    memory_pad_mask = _pad_mask([max(1, T_t - k) for k in range(K)], T_t)
    return ids, host, memory, memory_pad_mask


# ----------------------------------------------------------------------------- forward
@pytest.mark.parametrize("K,L,T_t", [(1, 1, 1), (3, 5, 7), (6, 2, 4)])
@pytest.mark.parametrize("embed_dim", [None, 24])
def test_forward_shapes(K, L, T_t, embed_dim):
    decoder, embedding = make(embed_dim)
    ids, host, memory, memory_pad_mask = _inputs(K, L, T_t)
    logits = decoder(ids, torch.zeros(K, L, dtype=torch.bool), host, memory, memory_pad_mask,
                     embedding)
    assert logits.shape == (K, L, V)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("L", [1, 4])
def test_empty_batch_gives_zero_loss_and_backward(L):
    decoder, embedding = make()
    logits = decoder(
        torch.zeros(0, L, dtype=torch.long), torch.zeros(0, L, dtype=torch.bool),
        torch.zeros(0, D), torch.zeros(0, 6, D), torch.zeros(0, 6, dtype=torch.bool), embedding,
    )
    assert logits.shape == (0, L, V)
    loss = aec_loss(logits, torch.zeros(0, L, dtype=torch.long))
    assert loss.item() == 0.0
    loss.backward()
    # every parameter gets a (zero) gradient: the same parameter set on every DDP rank
    for name, p in decoder.named_parameters():
        assert p.grad is not None and (p.grad == 0).all(), name


def test_gradient_reaches_every_parameter_and_the_embedding():
    decoder, embedding = make(dropout=0.0)
    K, L, T_t = 3, 5, 6
    ids, host, memory, memory_pad_mask = _inputs(K, L, T_t)
    host.requires_grad_(True)
    memory.requires_grad_(True)
    decoder_pad_mask = _pad_mask([5, 3, 4], L)
    labels = torch.randint(5, V, (K, L)).masked_fill(decoder_pad_mask, -100)
    logits = decoder(ids, decoder_pad_mask, host, memory, memory_pad_mask, embedding)
    aec_loss(logits, labels).backward()
    for name, p in list(decoder.named_parameters()) + list(embedding.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert host.grad.abs().sum() > 0
    assert memory.grad.abs().sum() > 0
    # padded memory frames receive no gradient
    assert (memory.grad[memory_pad_mask] == 0).all()


def test_decoder_does_not_own_the_embedding():
    decoder, embedding = make()
    own = {id(p) for p in decoder.parameters()}
    assert not own & {id(p) for p in embedding.parameters()}


def test_causal_future_tokens_do_not_change_the_past():
    decoder, embedding = make()
    decoder.eval()
    ids, host, memory, memory_pad_mask = _inputs(2, 6, 5)
    no_pad = torch.zeros(2, 6, dtype=torch.bool)
    changed = ids.clone()
    changed[:, 4:] = 7
    with torch.no_grad():
        a = decoder(ids, no_pad, host, memory, memory_pad_mask, embedding)
        b = decoder(changed, no_pad, host, memory, memory_pad_mask, embedding)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_host_vector_matters():
    decoder, embedding = make()
    decoder.eval()
    ids, host, memory, memory_pad_mask = _inputs(2, 3, 5)
    no_pad = torch.zeros(2, 3, dtype=torch.bool)
    with torch.no_grad():
        a = decoder(ids, no_pad, host, memory, memory_pad_mask, embedding)
        b = decoder(ids, no_pad, host + 1.0, memory, memory_pad_mask, embedding)
    assert not torch.allclose(a, b)


def test_padded_batch_equals_each_sequence_alone():
    decoder, embedding = make()
    decoder.eval()
    gen = torch.Generator().manual_seed(5)
    short_ids = torch.tensor([[BOS, 11, 12]])
    long_ids = torch.tensor([[BOS, 21, 22, 23, 24, 25]])
    short_mem, long_mem = torch.randn(1, 4, D, generator=gen), torch.randn(1, 7, D, generator=gen)
    short_host, long_host = torch.randn(1, D, generator=gen), torch.randn(1, D, generator=gen)
    with torch.no_grad():
        short_alone = decoder(short_ids, torch.zeros(1, 3, dtype=torch.bool), short_host,
                              short_mem, torch.zeros(1, 4, dtype=torch.bool), embedding)
        long_alone = decoder(long_ids, torch.zeros(1, 6, dtype=torch.bool), long_host,
                             long_mem, torch.zeros(1, 7, dtype=torch.bool), embedding)
        ids = torch.cat([torch.cat([short_ids, torch.full((1, 3), PAD)], 1), long_ids])
        memory = torch.cat([torch.cat([short_mem, 1e3 * torch.ones(1, 3, D)], 1), long_mem])
        batched = decoder(ids, _pad_mask([3, 6], 6), torch.cat([short_host, long_host]), memory,
                          _pad_mask([4, 7], 7), embedding)
    torch.testing.assert_close(batched[0, :3], short_alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched[1], long_alone[0], atol=1e-5, rtol=1e-5)


def test_memory_mask_matters():
    decoder, embedding = make()
    decoder.eval()
    ids, host, memory, _ = _inputs(2, 4, 6)
    memory_pad_mask = _pad_mask([6, 3], 6)
    no_pad = torch.zeros(2, 4, dtype=torch.bool)
    garbage = memory.clone()
    garbage[1, 3:] = torch.randn(3, D) * 50
    with torch.no_grad():
        ref = decoder(ids, no_pad, host, memory, memory_pad_mask, embedding)
        masked = decoder(ids, no_pad, host, garbage, memory_pad_mask, embedding)
        unmasked = decoder(ids, no_pad, host, garbage, torch.zeros_like(memory_pad_mask), embedding)
    torch.testing.assert_close(masked, ref)  # padded memory content changes nothing
    torch.testing.assert_close(unmasked[0], ref[0])  # row 0 had no padding
    assert not torch.allclose(unmasked[1], ref[1], atol=1e-3)  # without the mask it leaks


# ----------------------------------------------------------------------------- greedy
@pytest.mark.parametrize("K", [1, 4])
def test_greedy_agrees_with_teacher_forcing(K):
    decoder, embedding = make()
    decoder.eval()
    _, host, memory, memory_pad_mask = _inputs(K, 1, 6)
    with torch.no_grad():
        tokens, lengths, step_logits = decoder.greedy_decode(
            host, memory, memory_pad_mask, embedding, BOS, EOS, max_len=6, return_logits=True
        )
        S = tokens.shape[1]
        assert 1 <= S <= 6 and step_logits.shape == (K, S, V)
        first = decoder(torch.full((K, 1), BOS), torch.zeros(K, 1, dtype=torch.bool), host,
                        memory, memory_pad_mask, embedding)
        teacher_input = torch.cat([torch.full((K, 1), BOS), tokens[:, :-1]], dim=1)
        forced = decoder(teacher_input, torch.zeros(K, S, dtype=torch.bool), host, memory,
                         memory_pad_mask, embedding)
    torch.testing.assert_close(step_logits[:, 0], first[:, 0], atol=1e-5, rtol=1e-5)
    for k in range(K):
        n = min(int(lengths[k]) + 1, S)  # steps up to and including EOS
        torch.testing.assert_close(step_logits[k, :n], forced[k, :n], atol=1e-5, rtol=1e-5)
        assert (tokens[k, :n].tolist() == step_logits[k, :n].argmax(-1).tolist())


def test_greedy_batched_equals_alone():
    decoder, embedding = make(seed=3)
    decoder.eval()
    _, host, memory, memory_pad_mask = _inputs(3, 1, 5, seed=7)
    with torch.no_grad():
        tokens, lengths = decoder.greedy_decode(host, memory, memory_pad_mask, embedding, BOS,
                                                EOS, max_len=5)
        for k in range(3):
            alone, alone_len = decoder.greedy_decode(
                host[k:k + 1], memory[k:k + 1, : int((~memory_pad_mask[k]).sum())],
                memory_pad_mask[k:k + 1, : int((~memory_pad_mask[k]).sum())], embedding, BOS,
                EOS, max_len=5,
            )
            n = alone.shape[1]
            assert alone_len.item() == lengths[k].item()
            assert alone[0].tolist() == tokens[k, :n].tolist()


def test_greedy_stopping_and_padding_bookkeeping(monkeypatch):
    """Row k emits tokens 10, 11, … and EOS at step k; row 3 never ends (cap)."""
    decoder, embedding = make()
    K, max_len = 4, 3
    host, memory = torch.zeros(K, D), torch.zeros(K, 2, D)
    memory_pad_mask = torch.zeros(K, 2, dtype=torch.bool)
    end_step = torch.tensor([0, 1, 2, 99])

    def scripted(prefix, prefix_pad_mask, *args):
        step = prefix.shape[1] - 1
        logits = torch.zeros(K, prefix.shape[1], V)
        nxt = torch.where(end_step == step, torch.tensor(EOS), torch.tensor(10 + step))
        logits[torch.arange(K), -1, nxt] = 1.0
        return logits

    monkeypatch.setattr(decoder, "forward", scripted)
    tokens, lengths = decoder.greedy_decode(host, memory, memory_pad_mask, embedding, BOS, EOS,
                                            max_len=max_len, pad_id=PAD)
    assert tokens.tolist() == [
        [EOS, PAD, PAD],
        [10, EOS, PAD],
        [10, 11, EOS],
        [10, 11, 12],
    ]
    assert lengths.tolist() == [0, 1, 2, 3]
    # early stop once every row has ended
    end_step[:] = torch.tensor([0, 1, 0, 1])
    tokens, lengths = decoder.greedy_decode(host, memory, memory_pad_mask, embedding, BOS, EOS,
                                            max_len=10, pad_id=PAD)
    assert tokens.shape == (K, 2)
    assert lengths.tolist() == [0, 1, 0, 1]


def test_greedy_empty_batch():
    decoder, embedding = make()
    tokens, lengths, step_logits = decoder.greedy_decode(
        torch.zeros(0, D), torch.zeros(0, 3, D), torch.zeros(0, 3, dtype=torch.bool), embedding,
        BOS, EOS, return_logits=True,
    )
    assert tokens.shape == (0, 0) and lengths.shape == (0,) and step_logits.shape == (0, 0, V)


# ----------------------------------------------------------------------------- gather_hosts
def test_gather_hosts_values():
    states = torch.randn(3, 5, D)
    pad_mask = _pad_mask([5, 2, 4], 5)
    batch_index, positions = torch.tensor([2, 0, 2]), torch.tensor([1, 4, 3])
    host, memory, memory_pad_mask = gather_hosts(states, pad_mask, batch_index, positions)
    assert host.shape == (3, D) and memory.shape == (3, 5, D) and memory_pad_mask.shape == (3, 5)
    for k, (b, j) in enumerate(zip(batch_index.tolist(), positions.tolist())):
        torch.testing.assert_close(host[k], states[b, j])
        torch.testing.assert_close(memory[k], states[b])
        assert memory_pad_mask[k].tolist() == pad_mask[b].tolist()


def test_gather_hosts_empty_then_decoder():
    decoder, embedding = make()
    host, memory, memory_pad_mask = gather_hosts(
        torch.randn(2, 4, D), torch.zeros(2, 4, dtype=torch.bool),
        torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long),
    )
    assert host.shape == (0, D) and memory.shape == (0, 4, D)
    logits = decoder(torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, 3, dtype=torch.bool),
                     host, memory, memory_pad_mask, embedding)
    assert logits.shape == (0, 3, V)


@pytest.mark.parametrize("batch_index,positions", [([2], [0]), ([0], [4]), ([-1], [0])])
def test_gather_hosts_out_of_range(batch_index, positions):
    with pytest.raises(IndexError, match="out of range"):
        gather_hosts(torch.randn(2, 4, D), torch.zeros(2, 4, dtype=torch.bool),
                     torch.tensor(batch_index), torch.tensor(positions))


def test_gather_hosts_bad_shapes():
    with pytest.raises(ValueError, match=r"\[K\]"):
        gather_hosts(torch.randn(2, 4, D), torch.zeros(2, 4, dtype=torch.bool),
                     torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="text_pad_mask"):
        gather_hosts(torch.randn(2, 4, D), torch.zeros(2, 5, dtype=torch.bool),
                     torch.tensor([0]), torch.tensor([0]))


# ----------------------------------------------------------------------------- argument checks
def test_bad_arguments_raise():
    decoder, embedding = make()
    ids, host, memory, memory_pad_mask = _inputs(2, 3, 4)
    no_pad = torch.zeros(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="decoder_input"):
        decoder(ids[:1], no_pad[:1], host, memory, memory_pad_mask, embedding)
    with pytest.raises(ValueError, match="decoder_pad_mask"):
        decoder(ids, no_pad.long(), host, memory, memory_pad_mask, embedding)
    with pytest.raises(ValueError, match="host_states"):
        decoder(ids, no_pad, host[:, :5], memory, memory_pad_mask, embedding)
    with pytest.raises(ValueError, match="memory must"):
        decoder(ids, no_pad, host, memory[:1], memory_pad_mask, embedding)
    with pytest.raises(ValueError, match="memory_pad_mask"):
        decoder(ids, no_pad, host, memory, memory_pad_mask.float(), embedding)
    with pytest.raises(ValueError, match="embed_fn"):
        decoder(ids, no_pad, host, memory, memory_pad_mask, ToyEmbedding(dim=16))
    with pytest.raises(ValueError, match="nhead"):
        SelectiveAECDecoder(D, V, nhead=5)
    with pytest.raises(ValueError, match="max_len"):
        decoder.greedy_decode(host, memory, memory_pad_mask, embedding, BOS, EOS, max_len=0)

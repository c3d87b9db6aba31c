"""Attention against PyTorch's own implementations, given the same projections."""

import pytest
import torch
import torch.nn.functional as F

from i2b_minimal.attention import CrossAttention, MultiHeadAttention, SelfAttention, scaled_dot_product_attention


def _heads(x, n):  # (B, T, H*d) -> (B, H, T, d)
    return x.view(x.shape[0], x.shape[1], n, -1).transpose(1, 2)


@pytest.fixture
def attention():
    torch.manual_seed(0)
    return MultiHeadAttention(width=32, context_dim=24, num_heads=4)


def test_cross_attention_equals_torch_sdpa(attention):
    x, context = torch.randn(2, 7, 32), torch.randn(2, 5, 24)
    out, weights = attention(x, context)

    q = _heads(F.linear(x, attention.to_q.weight), 4)
    k = _heads(F.linear(context, attention.to_k.weight), 4)
    v = _heads(F.linear(context, attention.to_v.weight), 4)
    reference = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 7, 32)
    reference = attention.to_out(reference)

    torch.testing.assert_close(out, reference)
    assert weights.shape == (2, 4, 7, 5)  # one distribution over the 5 image tokens per head and time step
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4, 7))


def test_cross_attention_equals_nn_multihead_attention(attention):
    x, context = torch.randn(3, 6, 32), torch.randn(3, 4, 24)
    reference = torch.nn.MultiheadAttention(32, 4, kdim=24, vdim=24, batch_first=True)
    with torch.no_grad():
        reference.q_proj_weight.copy_(attention.to_q.weight)
        reference.k_proj_weight.copy_(attention.to_k.weight)
        reference.v_proj_weight.copy_(attention.to_v.weight)
        reference.in_proj_bias.zero_()
        reference.out_proj.weight.copy_(attention.to_out.weight)
        reference.out_proj.bias.copy_(attention.to_out.bias)
    expected, expected_weights = reference(x, context, context, average_attn_weights=False)
    out, weights = attention(x, context)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(weights, expected_weights)


def test_scaled_dot_product_attention_by_hand():
    # One query, two keys: the weights are the softmax of the scaled dot products.
    q = torch.tensor([[[[1.0, 0.0]]]])
    k = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    v = torch.tensor([[[[10.0, 0.0], [0.0, 10.0]]]])
    out, weights = scaled_dot_product_attention(q, k, v)
    p = torch.softmax(torch.tensor([1 / 2**0.5, 0.0]), dim=0)
    torch.testing.assert_close(weights[0, 0, 0], p)
    torch.testing.assert_close(out[0, 0, 0], 10 * p)


def test_blocks_are_residual_over_time_tokens():
    torch.manual_seed(0)
    h, tokens = torch.randn(2, 16, 9), torch.randn(2, 3, 12)  # feature map (B, C, T), image tokens (B, L, D)
    cross = CrossAttention(16, context_dim=12, num_heads=4, groups=4)
    out, weights = cross(h, tokens)
    assert out.shape == h.shape and weights.shape == (2, 4, 9, 3)
    attended, _ = cross.attention(cross.norm(h).transpose(1, 2), tokens)
    torch.testing.assert_close(out, h + attended.transpose(1, 2))
    # Another image changes every time step's output.
    other, _ = cross(h, torch.randn(2, 3, 12))
    assert (other - out).abs().amax(dim=1).min() > 0

    self_attention = SelfAttention(16, num_heads=2, groups=4)
    out, weights = self_attention(h)
    assert out.shape == h.shape and weights.shape == (2, 2, 9, 9)


@pytest.mark.parametrize("key_value_heads", [1, 2])  # multi-query (Shazeer 2019) and grouped (Ainslie et al. 2023)
def test_shared_key_value_heads_equal_torch_grouped_query_attention(key_value_heads):
    torch.manual_seed(0)
    layer = MultiHeadAttention(width=32, context_dim=24, num_heads=4, key_value_heads=key_value_heads)
    assert layer.to_k.weight.shape == layer.to_v.weight.shape == (8 * key_value_heads, 24)  # d = 32 / 4 per head
    x, context = torch.randn(2, 7, 32), torch.randn(2, 5, 24)
    # PyTorch's own grouped-query attention: query head h reads key/value head h // (4 // key_value_heads).
    q = _heads(F.linear(x, layer.to_q.weight), 4)
    k = _heads(F.linear(context, layer.to_k.weight), key_value_heads)
    v = _heads(F.linear(context, layer.to_v.weight), key_value_heads)
    reference = F.scaled_dot_product_attention(q, k, v, enable_gqa=True).transpose(1, 2).reshape(2, 7, 32)
    reference = layer.to_out(reference)
    for return_weights in (True, False):
        out, _ = layer(x, context, return_weights=return_weights)
        torch.testing.assert_close(out, reference)
    _, weights = layer(x, context)
    shared = k.repeat_interleave(4 // key_value_heads, dim=1)
    expected = (q @ shared.transpose(-2, -1) / 8 ** 0.5).softmax(dim=-1)  # (B, heads, T, L), head by head
    torch.testing.assert_close(weights, expected)


def test_width_must_split_into_heads():
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention(30, num_heads=4)
    with pytest.raises(ValueError, match="key_value_heads 3 must divide num_heads 4"):
        MultiHeadAttention(32, num_heads=4, key_value_heads=3)


@pytest.mark.parametrize("context_dim", [24, None])  # cross-attention to 5 tokens, self-attention over 7 steps
def test_fused_kernel_equals_the_written_out_softmax(context_dim):
    # Training runs F.scaled_dot_product_attention (return_weights=False); the maps run the softmax above.
    torch.manual_seed(0)
    layer = MultiHeadAttention(width=32, context_dim=context_dim, num_heads=4).double()
    x = torch.randn(2, 7, 32, dtype=torch.float64, requires_grad=True)
    context = None if context_dim is None else torch.randn(2, 5, context_dim, dtype=torch.float64)
    fused, no_weights = layer(x, context, return_weights=False)
    written, weights = layer(x, context)
    assert no_weights is None and weights.shape == (2, 4, 7, 7 if context is None else 5)
    torch.testing.assert_close(fused, written, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(fused)
    (fused_grad,), (written_grad,) = torch.autograd.grad(fused, x, grad), torch.autograd.grad(written, x, grad)
    torch.testing.assert_close(fused_grad, written_grad, rtol=1e-12, atol=1e-12)


def test_blocks_pass_the_choice_of_kernel_through():
    torch.manual_seed(0)
    h, tokens = torch.randn(2, 16, 9), torch.randn(2, 3, 12)
    cross = CrossAttention(16, context_dim=12, num_heads=4, groups=4)
    out, weights = cross(h, tokens, return_weights=False)
    assert weights is None
    torch.testing.assert_close(out, cross(h, tokens)[0])
    self_attention = SelfAttention(16, num_heads=2, groups=4)
    out, weights = self_attention(h, return_weights=False)
    assert weights is None
    torch.testing.assert_close(out, self_attention(h)[0])

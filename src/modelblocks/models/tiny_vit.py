"""A small hand-made Vision Transformer, the kind the vendor's converter refused (LayerNorm, GELU,
multi-head attention): patch embedding, class token, positional embedding, pre-norm blocks with
residuals, and a 6-class head.

Block attention is written out by hand (q @ k^T, softmax, @ v) or through
F.scaled_dot_product_attention, both of which ModelBlocks must compile.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchEmbed(nn.Module):
    def __init__(self, in_channels: int, dim: int, patch: int):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, N, dim)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, use_sdpa: bool):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.use_sdpa = use_sdpa

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.use_sdpa:
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q @ k.transpose(-2, -1)) * self.scale
            out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int, use_sdpa: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, use_sdpa)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp_ratio), nn.GELU(), nn.Linear(dim * mlp_ratio, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    def __init__(self, image_size: int = 32, patch: int = 8, in_channels: int = 3, dim: int = 64, depth: int = 2,
                 heads: int = 4, mlp_ratio: int = 2, num_classes: int = 6, sdpa_blocks: str = "odd"):
        """`sdpa_blocks`: "odd" writes attention through F.scaled_dot_product_attention in blocks 1, 3, ...
        and by hand in the others (both forms in one model); "none" writes every block by hand."""
        super().__init__()
        if sdpa_blocks not in ("odd", "none"):
            raise ValueError(f"sdpa_blocks must be 'odd' or 'none', got {sdpa_blocks!r}")
        self.patch_embed = PatchEmbed(in_channels, dim, patch)
        num_patches = (image_size // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, num_patches + 1, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, use_sdpa=sdpa_blocks == "odd" and i % 2 == 1)
                                    for i in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x)[:, 0])


def build(seed: int = 0) -> tuple[TinyViT, tuple[torch.Tensor]]:
    """The bundled default model with deterministic weights, and an example input."""
    torch.manual_seed(seed)
    model = TinyViT().eval()
    # give LayerNorms non-trivial affine parameters so the check exercises them
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model, (torch.randn(1, 3, 32, 32),)

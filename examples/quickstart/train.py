"""Train the quick-start model for a few seconds on a synthetic task and save what the walk-through
uses: net.pth (the state_dict), calib.npz (inputs for int8 calibration) and data.npz (held-out
samples with labels). Your own training script only needs the `torch.save(model.state_dict(), ...)`.

The task: which quadrant of a noisy 32x32 image holds a bright blob. Run: python train.py [folder]
"""

import sys
from pathlib import Path

import numpy as np
import torch

from net import Net


def samples(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, 4, (n,), generator=gen)
    x = 0.3 * torch.randn(n, 1, 32, 32, generator=gen)
    for i, label in enumerate(labels.tolist()):
        r, c = 4 + 16 * (label // 2) + int(torch.randint(0, 6, (1,), generator=gen)), \
            4 + 16 * (label % 2) + int(torch.randint(0, 6, (1,), generator=gen))
        x[i, 0, r:r + 4, c:c + 4] += 1.5
    return x, labels


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = Net()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    x_train, y_train = samples(2048, gen)
    for epoch in range(3):
        for i in range(0, len(x_train), 64):
            loss = torch.nn.functional.cross_entropy(model(x_train[i:i + 64]), y_train[i:i + 64])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    x_eval, y_eval = samples(512, gen)
    with torch.no_grad():
        accuracy = (model(x_eval).argmax(1) == y_eval).float().mean().item()
    torch.save(model.state_dict(), out / "net.pth")
    np.savez(out / "calib.npz", x=x_train[:128].numpy())
    np.savez(out / "data.npz", x=x_eval.numpy(), y=y_eval.numpy())
    print(f"trained: held-out accuracy {100 * accuracy:.1f} %; wrote {out}/net.pth, calib.npz, data.npz")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("."))

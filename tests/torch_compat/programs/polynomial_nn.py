# The cubic as a network: features x^1..x^3, nn.Sequential(Linear, Flatten), an optimiser.
import math

import numpy as np
import torch

x = torch.linspace(-math.pi, math.pi, 2000)
y = torch.sin(x)
p = torch.tensor([1, 2, 3])
xx = x.unsqueeze(-1).pow(p)

model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
rng = np.random.default_rng(1)
with torch.no_grad():  # the same start for both libraries
    model[0].weight.copy_(torch.tensor(rng.uniform(-0.5, 0.5, (1, 3)), dtype=torch.float32))
    model[0].bias.fill_(0.1)
print(model[0].weight.dtype, xx.dtype, tuple(xx.size()), xx.size(1), xx.dim(), xx.numel())

loss_fn = torch.nn.MSELoss(reduction="sum")
optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
for t in range(300):
    y_pred = model(xx)
    loss = loss_fn(y_pred, y)
    if t % 100 == 99:
        print(t, loss.item())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

linear_layer = model[0]
w = linear_layer.weight[:, 0].item(), linear_layer.weight[:, 1].item()
print(f"Result: y = {linear_layer.bias.item()} + {w[0]} x + {w[1]} x^2")
print(linear_layer.weight.t().tolist(), linear_layer.weight.mm(torch.ones(3, 1)).item())

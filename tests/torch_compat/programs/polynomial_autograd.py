# Fit y = sin(x) with a cubic a + b x + c x^2 + d x^3, gradients by autograd.
import math

import numpy as np
import torch

dtype = torch.float
device = torch.device("cpu")

x = torch.linspace(-math.pi, math.pi, 2000, device=device, dtype=dtype)
y = torch.sin(x)

start = np.random.default_rng(0).standard_normal(4)  # the same start for both libraries
a = torch.tensor(start[0], device=device, dtype=dtype, requires_grad=True)
b = torch.tensor(start[1], device=device, dtype=dtype, requires_grad=True)
c = torch.tensor(start[2], device=device, dtype=dtype, requires_grad=True)
d = torch.tensor(start[3], device=device, dtype=dtype, requires_grad=True)

learning_rate = 1e-6
for t in range(500):
    y_pred = a + b * x + c * x**2 + d * x**3
    loss = (y_pred - y).pow(2).sum()
    if t % 100 == 99:
        print(t, loss.item())
    loss.backward()
    with torch.no_grad():
        a -= learning_rate * a.grad
        b -= learning_rate * b.grad
        c -= learning_rate * c.grad
        d -= learning_rate * d.grad
        a.grad = None
        b.grad = None
        c.grad = None
        d.grad = None

print(f"Result: y = {a.item()} + {b.item()} x + {c.item()} x^2 + {d.item()} x^3")

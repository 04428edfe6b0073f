# The autograd quickstart: one layer, a loss, gradients, no_grad, detach, vector-Jacobian.
import numpy as np
import torch

x = torch.ones(5)
y = torch.zeros(3)
rng = np.random.default_rng(2)
w = torch.tensor(rng.standard_normal((5, 3)), dtype=torch.float32, requires_grad=True)
b = torch.tensor(rng.standard_normal(3), dtype=torch.float32, requires_grad=True)
z = torch.matmul(x, w) + b
loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
print(loss.item())

loss.backward()
print(w.grad.tolist())
print(b.grad.tolist())

print(z.requires_grad)
with torch.no_grad():
    z = torch.matmul(x, w) + b
print(z.requires_grad)
z_det = (torch.matmul(x, w) + b).detach()
print(z_det.requires_grad)

inp = torch.eye(4, 5, requires_grad=True)
out = (inp + 1).pow(2).t()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"First call\n{inp.grad.tolist()}")
out.backward(torch.ones_like(out), retain_graph=True)
print(f"Second call\n{inp.grad.tolist()}")
inp.grad.zero_()
out.backward(torch.ones_like(out), retain_graph=True)
print(f"Call after zeroing gradients\n{inp.grad.tolist()}")

q = torch.tensor([[2.0, 3.0], [1.0, 4.0]], requires_grad=True)
vals, idx = q.max(dim=1)
vals.sum().backward()
print(vals.tolist(), idx.tolist(), q.grad.tolist(), q.argmax(1).tolist())
print((torch.ones(2) * torch.tensor([1, 2])).dtype, (torch.arange(3) * 0.5).dtype)

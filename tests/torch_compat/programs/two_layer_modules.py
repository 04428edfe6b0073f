# A two-layer network as a Module subclass, LogSoftmax + NLLLoss, Adagrad, ModuleList.
import numpy as np
import torch


class TwoLayerNet(torch.nn.Module):
    def __init__(self, d_in, h, d_out):
        super().__init__()
        self.layers = torch.nn.ModuleList([torch.nn.Linear(d_in, h), torch.nn.Linear(h, d_out)])
        self.act = torch.nn.Tanh()
        self.out = torch.nn.LogSoftmax(dim=1)

    def forward(self, x):
        return self.out(self.layers[1](self.act(self.layers[0](x))))


rng = np.random.default_rng(5)
x = torch.tensor(rng.standard_normal((64, 10)), dtype=torch.float32)
y = torch.tensor(rng.integers(0, 4, 64))
model = TwoLayerNet(10, 20, 4)
with torch.no_grad():
    for p in model.parameters():
        p.copy_(torch.from_numpy(rng.uniform(-0.2, 0.2, tuple(p.shape)).astype(np.float32)))

criterion = torch.nn.NLLLoss()
optimizer = torch.optim.Adagrad(model.parameters(), lr=0.05)
for t in range(200):
    loss = criterion(model(x), y)
    if t % 50 == 49:
        print(t, loss.item())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
probs = torch.nn.Softmax(dim=1)(model.layers[1](model.act(model.layers[0](x))))
print(probs.sum(1).mean().item(), probs.max(dim=1).values.mean().item())
print(sum(p.numel() for p in model.parameters()))

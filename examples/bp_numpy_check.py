#!/usr/bin/python3
"""An independent cross-check of our BP baseline on MNIST, written with numpy only.

It implements the published BP configuration from scratch (784-256-256-256-10, tanh,
softmax + cross-entropy averaged over the minibatch, Xavier-normal weights and zero biases,
Adam with beta1 = beta2 = 0.99, eps 5.77e-8, learning rate 2.98e-7 / lambda 0.001, batch 128,
no clipping, inputs (x/255 - 0.1307)/0.3081, the first 55,000 training images train, the last
5,000 validate) with its own random numbers, so that its test errors after each epoch give
an independent spread to compare ours and the reference's figures with (docs/results.md).

    /usr/bin/python3 examples/bp_numpy_check.py [--epochs 3] [--seeds 1,2,3] [--data data/mnist]
               [--partial]

--partial also trains on the last, smaller minibatch of each epoch (55,000 = 429 x 128 + 88),
as a PyTorch DataLoader does by default; without it the remainder is dropped, as our trainer
does. test_error_batch_mean is the test error as the reference reports it, the mean of the
error rates of the 79 test minibatches (the last has 16 images). Needs python3-numpy (Debian
package); not part of the test suite.
"""
import argparse
import os
import struct
import time

import numpy as np


def read_idx(path):
    with open(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        ndim = magic & 0xFF
        shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(shape)


def load(data):
    def images(name):
        x = read_idx(os.path.join(data, name)).reshape(-1, 784).astype(np.float64)
        return (x / 255.0 - 0.1307) / 0.3081

    def labels(name):
        return read_idx(os.path.join(data, name)).astype(np.int64)

    x, y = images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte")
    xt, yt = images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte")
    return (x[:55000], y[:55000]), (x[55000:], y[55000:]), (xt, yt)


class Net:
    sizes = [784, 256, 256, 256, 10]

    def __init__(self, rng):
        self.W = [rng.normal(0.0, np.sqrt(2.0 / (a + b)), size=(b, a))
                  for a, b in zip(self.sizes[:-1], self.sizes[1:])]
        self.b = [np.zeros(b) for b in self.sizes[1:]]

    def forward(self, x):
        rs = [x]
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            v = rs[-1] @ W.T + b
            rs.append(v if i == len(self.W) - 1 else np.tanh(v))
        return rs

    def grads(self, x, y):
        rs = self.forward(x)
        z = rs[-1] - rs[-1].max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        d = p
        d[np.arange(len(y)), y] -= 1.0
        d /= len(y)  # mean over the minibatch
        gW, gb = [None] * len(self.W), [None] * len(self.W)
        for i in reversed(range(len(self.W))):
            gW[i] = d.T @ rs[i]
            gb[i] = d.sum(axis=0)
            if i > 0:
                d = (d @ self.W[i]) * (1.0 - rs[i] ** 2)
        return gW, gb

    def error(self, x, y):
        return float(np.mean(self.forward(x)[-1].argmax(axis=1) != y))

    def error_batch_mean(self, x, y, batch=128):
        """The mean over minibatches of their error rates (a short last one counts as much as
        the others): how the reference's trainer reports test accuracy."""
        errs = [self.error(x[s:s + batch], y[s:s + batch]) for s in range(0, len(y), batch)]
        return float(np.mean(errs))


class Adam:
    def __init__(self, params, lr, b1, b2, eps):
        self.lr, self.b1, self.b2, self.eps, self.t = lr, b1, b2, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, params, grads):
        self.t += 1
        c1, c2 = 1.0 - self.b1 ** self.t, 1.0 - self.b2 ** self.t
        for p, g, m, v in zip(params, grads, self.m, self.v):
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * g * g
            p -= (self.lr / c1) * m / (np.sqrt(v) / np.sqrt(c2) + self.eps)


def run(seed, epochs, train, valid, test, partial):
    rng = np.random.default_rng(seed)
    net = Net(rng)
    opt = Adam(net.W + net.b, 2.97764587844326e-07 / 0.001, 0.99, 0.99, 5.770311627459478e-08)
    x, y = train
    n = len(y)
    last = n if partial else n - n % 128
    out = []
    for e in range(epochs):
        t0 = time.time()
        order = rng.permutation(n)
        for s in range(0, last, 128):
            idx = order[s:s + 128]
            gW, gb = net.grads(x[idx], y[idx])
            opt.step(net.W + net.b, gW + gb)
        out.append((e + 1, net.error(*valid), net.error(*test), net.error_batch_mean(*test),
                    time.time() - t0))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "data", "mnist"))
    ap.add_argument("--partial", action="store_true")
    a = ap.parse_args()
    train, valid, test = load(a.data)
    print("seed,epoch,valid_error,test_error,test_error_batch_mean,seconds")
    for seed in (int(s) for s in a.seeds.split(",")):
        for e, ve, te, tb, s in run(seed, a.epochs, train, valid, test, a.partial):
            print(f"{seed},{e},{100 * ve:.2f},{100 * te:.2f},{100 * tb:.2f},{s:.1f}", flush=True)


if __name__ == "__main__":
    main()

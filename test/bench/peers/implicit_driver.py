#!/usr/bin/python3
"""implicit_driver.py: the `implicit` side of `make bench-peers` (test/bench/peers.sh).

Trains one implicit.cpu.als.AlternatingLeastSquares model (implicit 0.7.3, built
from source by peers.sh and imported through PYTHONPATH) on a training file
and scores it on a held-out file, then prints one line:

    fit wall seconds <TAB> fit CPU seconds (all threads) <TAB> precision@10

precision@10 is mf_evaluate's: per test user, hits among the 10 best-scored
items not in that user's training rows, divided by 10, averaged over the test
users.  Only fit() is timed; reading the files and scoring are not.

Files: "user<TAB>item<TAB>value" lines with dense 0-based ids (the test file
holds only users and items of the training file).

The objective is set up to be mf_ext's: implicit takes the matrix's values as
the confidences c themselves (c * alpha with its alpha; its CG and Cholesky
kernels add c - 1 times y y^T to Y^T Y), so the matrix holds
1 + alpha * value and implicit's own alpha stays 1; its regularization is
added unscaled to Y^T Y, as mf_ext's lambda.

Usage: implicit_driver.py TRAIN TEST k lambda alpha iterations threads cg|cholesky
"""
import sys
import time

import numpy as np
import scipy.sparse

from implicit.cpu.als import AlternatingLeastSquares


def read(path):
    data = np.loadtxt(path, delimiter="\t", dtype=np.float64, ndmin=2)
    return data[:, 0].astype(np.int32), data[:, 1].astype(np.int32), data[:, 2]


def precision_at_10(model, train, test_users, test_items):
    users = model.user_factors
    items = model.item_factors
    relevant = {}
    for a, i in zip(test_users, test_items):
        relevant.setdefault(int(a), set()).add(int(i))
    ids = np.array(sorted(relevant), dtype=np.int64)
    total = 0.0
    for start in range(0, len(ids), 256):
        batch = ids[start:start + 256]
        scores = users[batch] @ items.T
        seen = train[batch]
        scores[seen.nonzero()] = -np.inf
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        for row, a in enumerate(batch):
            total += len(relevant[int(a)].intersection(top[row].tolist())) / 10.0
    return total / len(ids)


def main():
    train_path, test_path = sys.argv[1], sys.argv[2]
    k, lam, alpha = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    iterations, threads, solver = int(sys.argv[6]), int(sys.argv[7]), sys.argv[8]

    u, i, r = read(train_path)
    m, n = int(u.max()) + 1, int(i.max()) + 1
    confidence = scipy.sparse.csr_matrix(((1.0 + alpha * r).astype(np.float32), (u, i)),
                                         shape=(m, n))
    test_u, test_i, _ = read(test_path)

    model = AlternatingLeastSquares(factors=k, regularization=lam, alpha=1.0,
                                    use_cg=(solver == "cg"), iterations=iterations,
                                    num_threads=threads, random_state=1,
                                    calculate_training_loss=False)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    model.fit(confidence, show_progress=False)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0

    print("%.4f\t%.4f\t%.6f" % (wall, cpu, precision_at_10(model, confidence, test_u, test_i)))


if __name__ == "__main__":
    main()

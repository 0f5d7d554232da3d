"""Independent float64 NumPy implementations of APGD, APGD-T and Square for a linear model
logits = flatten(x) @ w + b, written from the authors' PyTorch code (fra31/auto-attack), loop
for loop, to check the TensorFlow attacks against. Gradients are closed-form."""

import math

import numpy as np


def logits(w, b, x):
    return x.reshape(len(x), -1) @ w + b


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def loss_and_grad(w, b, x, y, loss, targets=None):
    """Per-example loss and its gradient with respect to x."""
    z = logits(w, b, x)
    n = np.arange(len(y))
    order = np.sort(z, axis=1)
    if loss == "ce":
        p = _softmax(z)
        value = -np.log(p[n, y])
        dz = p.copy()
        dz[n, y] -= 1.0
    else:
        dz = np.zeros_like(z)
        if loss == "dlr":
            top = np.argsort(z, axis=1)
            other = np.where(top[:, -1] == y, top[:, -2], top[:, -1])
            third = top[:, -3]
            denominator = z[n, top[:, -1]] - z[n, third] + 1e-12
            numerator = z[n, y] - z[n, other]
            value = -numerator / denominator
            np.add.at(dz, (n, y), -1.0 / denominator)
            np.add.at(dz, (n, other), 1.0 / denominator)
            np.add.at(dz, (n, top[:, -1]), numerator / denominator**2)
            np.add.at(dz, (n, third), -numerator / denominator**2)
        else:  # targeted DLR
            top = np.argsort(z, axis=1)
            denominator = order[:, -1] - 0.5 * (order[:, -3] + order[:, -4]) + 1e-12
            numerator = z[n, y] - z[n, targets]
            value = -numerator / denominator
            np.add.at(dz, (n, y), -1.0 / denominator)
            np.add.at(dz, (n, targets), 1.0 / denominator)
            np.add.at(dz, (n, top[:, -1]), numerator / denominator**2)
            np.add.at(dz, (n, top[:, -3]), -0.5 * numerator / denominator**2)
            np.add.at(dz, (n, top[:, -4]), -0.5 * numerator / denominator**2)
        # Where y ranks third the DLR loss is the constant 1: its two gradient terms cancel.
        # TensorFlow's float32 arithmetic gets exactly 0 there; make float64 round it to 0 too.
        dz[np.abs(dz) < 1e-9] = 0.0
    grad = (dz @ w.T).reshape(x.shape)
    return value, grad, z.argmax(axis=1) == y


def _project(x_adv, x, eps, norm):
    if norm == "linf":
        return np.clip(np.clip(x_adv, x - eps, x + eps), 0.0, 1.0)
    delta = (x_adv - x).reshape(len(x), -1)
    length = np.linalg.norm(delta, axis=1, keepdims=True)
    delta = delta / (length + 1e-12) * np.minimum(eps, length)
    return np.clip(x + delta.reshape(x.shape), 0.0, 1.0)


def _step(x_adv, grad, step_size, norm):
    if norm == "linf":
        return x_adv + step_size * np.sign(grad)
    flat = grad.reshape(len(grad), -1)
    unit = flat / (np.linalg.norm(flat, axis=1, keepdims=True) + 1e-12)
    return x_adv + step_size * unit.reshape(grad.shape)


def apgd(w, b, x, y, start, eps, steps, norm="linf", loss="ce", targets=None):
    """APGD's single run (attack_single_run) from `start`; returns the last misclassified
    iterate (x_best_adv) or, where there is none, the highest-loss one (x_best), and which
    examples were fooled."""
    shape = [-1] + [1] * (x.ndim - 1)
    n_iter_2, n_iter_min = max(int(0.22 * steps), 1), max(int(0.06 * steps), 1)
    size_decr = max(int(0.03 * steps), 1)
    x_adv = start.copy()
    x_best, x_best_adv = x_adv.copy(), x_adv.copy()
    loss_steps = np.zeros([steps, len(x)])
    value, grad, correct = loss_and_grad(w, b, x_adv, y, loss, targets)
    acc = correct.copy()
    grad_best, loss_best = grad.copy(), value.copy()
    step_size = 2.0 * eps * np.ones(len(x))
    x_adv_old = x_adv.copy()
    k, counter3 = n_iter_2, 0
    loss_best_last_check, reduced_last_check = loss_best.copy(), np.ones(len(x), bool)
    for i in range(steps):
        grad2 = x_adv - x_adv_old
        x_adv_old = x_adv.copy()
        a = 0.75 if i > 0 else 1.0
        x_adv_1 = _project(_step(x_adv, grad, step_size.reshape(shape), norm), x, eps, norm)
        x_adv = _project(x_adv + (x_adv_1 - x_adv) * a + grad2 * (1 - a), x, eps, norm)
        value, grad, correct = loss_and_grad(w, b, x_adv, y, loss, targets)
        acc &= correct
        x_best_adv[~correct] = x_adv[~correct]
        loss_steps[i] = value
        better = value > loss_best
        x_best[better], grad_best[better], loss_best[better] = (
            x_adv[better],
            grad[better],
            value[better],
        )
        counter3 += 1
        if counter3 == k:
            t = sum((loss_steps[i - c] > loss_steps[i - c - 1]).astype(float) for c in range(k))
            oscillation = t <= k * 0.75
            no_improvement = ~reduced_last_check & (loss_best_last_check >= loss_best)
            reduce = oscillation | no_improvement
            reduced_last_check, loss_best_last_check = reduce.copy(), loss_best.copy()
            step_size[reduce] /= 2.0
            x_adv[reduce], grad[reduce] = x_best[reduce], grad_best[reduce]
            k = max(k - size_decr, n_iter_min)
            counter3 = 0
    return np.where((~acc).reshape(shape), x_best_adv, x_best), ~acc


def random_start(x, eps, norm, rng):
    """APGD's start (autopgd_base.py:204-213), from NumPy's generator."""
    shape = [-1] + [1] * (x.ndim - 1)
    if norm == "linf":
        t = rng.uniform(-1, 1, x.shape)
        scale = np.abs(t).reshape(len(x), -1).max(axis=1)
    else:
        t = rng.normal(size=x.shape)
        scale = np.linalg.norm(t.reshape(len(x), -1), axis=1)
    return np.clip(x + eps * t / (scale.reshape(shape) + 1e-12), 0.0, 1.0)


def apgd_targeted(w, b, x, y, eps, steps, norm, rng, target_classes=9):
    """APGD-T's perturb: one run per target class, each on the examples still robust."""
    ranked = np.argsort(-logits(w, b, x), axis=1, kind="stable")
    robust = ranked[:, 0] == y
    x_adv = x.copy()
    for t in range(1, min(target_classes, w.shape[1] - 1) + 1):
        idx = np.flatnonzero(robust)
        if not len(idx):
            break
        start = random_start(x[idx], eps, norm, rng)
        adv, fooled = apgd(w, b, x[idx], y[idx], start, eps, steps, norm, "dlr-t", ranked[idx, t])
        x_adv[idx[fooled]] = adv[fooled]
        robust[idx[fooled]] = False
    return x_adv, robust


def _p_selection(i, p_init):
    """square.py:192-219 with resc_schedule=False, as AutoAttack runs it."""
    return p_init / 2 ** sum(i > m for m in (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000))


def square_linf(w, b, x, y, eps, queries, rng, p_init=0.8):
    """Square's L-inf single run (square.py:233-303), x NHWC; returns (x_best, fooled)."""
    n, h, wd, c = x.shape

    def margin(images):
        z = logits(w, b, images)
        true = z[np.arange(len(z)), y].copy()
        z[np.arange(len(z)), y] = -np.inf
        return true - z.max(axis=1)

    x_best = np.clip(x + eps * rng.choice([-1.0, 1.0], size=(n, 1, wd, c)), 0.0, 1.0)
    margin_min = margin(x_best)
    for i in range(queries):
        active = margin_min > 0
        if not active.any():
            break
        s = min(max(int(round(math.sqrt(_p_selection(i, p_init) * h * wd))), 1), h, wd)
        vh, vw = int(rng.uniform() * (h - s)), int(rng.uniform() * (wd - s))
        change = np.zeros((h, wd, c))
        change[vh : vh + s, vw : vw + s] = 2.0 * eps * rng.choice([-1.0, 1.0], size=c)
        x_new = np.clip(np.clip(x_best + change, x - eps, x + eps), 0.0, 1.0)
        margin_new = margin(x_new)
        keep = active & ((margin_new < margin_min) | (margin_new <= 0))
        x_best[keep], margin_min[keep] = x_new[keep], margin_new[keep]
    return x_best, margin_min <= 0


def project_hyperplane_box(t, w, c, norm):
    """Per row, the smallest move d (L-inf or L2) with w.d = c and t + d in [0, 1]; where
    no such move exists, the box point that gets w.(t + d) closest to w.t + c.

    Solved by bisection rather than the reference's sorting: the L2 minimiser is
    clip(lam w, -t, 1 - t) for the lam that meets the hyperplane (its KKT conditions), and
    the L-inf one moving every coordinate by the same s towards it, clipped to the box."""
    d = np.zeros_like(t)
    for i in range(len(t)):
        lower, upper = -t[i], 1.0 - t[i]
        if norm == "l2":

            def move(lam, i=i, lower=lower, upper=upper):
                return np.clip(lam * w[i], lower, upper)

            lo, hi = -1e12, 1e12
        else:
            direction = np.sign(w[i]) * np.sign(c[i])

            def move(s, i=i, lower=lower, upper=upper, direction=direction):
                return np.clip(s * direction, lower, upper)

            lo, hi = 0.0, 1.0
        sign = 1.0 if norm == "l2" else np.sign(c[i])
        for _ in range(200):  # w.move(.) rises with its argument (times `sign` for L-inf)
            middle = (lo + hi) / 2
            if sign * (w[i] @ move(middle)) < sign * c[i]:
                lo = middle
            else:
                hi = middle
        d[i] = move((lo + hi) / 2)
    return d


def fab_run(forward, x, y, targets, steps, norm):
    """One FAB run towards `targets` from x itself (fab_base.py:attack_single_run without a
    random start) for a model given as forward(x, y, t) -> (logits, gradient of z_t - z_y);
    returns the distance of the closest misclassified point found (1e10 where none)."""
    alpha_max, eta, beta = 0.1, 1.05, 0.9
    n = len(x)
    x0 = x.reshape(n, -1)
    rows = np.arange(n)

    def norms(delta):
        return np.abs(delta).max(axis=1) if norm == "linf" else np.linalg.norm(delta, axis=1)

    x1, distance = x0.copy(), np.full(n, 1e10)
    for _ in range(steps):
        z, grad = forward(x1.reshape(x.shape), y, targets)
        grad = grad.reshape(n, -1)
        f = z[rows, targets] - z[rows, y]
        # Hyperplane f + g.(p - x1) = 0: from x1 the move must change g.p by -f, from x0 by
        # -f - g.(x0 - x1).
        d1 = project_hyperplane_box(x1, grad, -f, norm)
        d2 = project_hyperplane_box(x0, grad, -f - ((x0 - x1) * grad).sum(1), norm)
        a1, a2 = np.maximum(norms(d1), 1e-8), np.maximum(norms(d2), 1e-8)
        alpha = np.clip(a1 / (a1 + a2), 0.0, alpha_max)[:, None]
        x1 = np.clip((x1 + eta * d1) * (1 - alpha) + (x0 + eta * d2) * alpha, 0.0, 1.0)
        fooled = forward(x1.reshape(x.shape), y, targets)[0].argmax(axis=1) != y
        length = norms(x1 - x0)
        distance = np.where(fooled & (length < distance), length, distance)
        x1[fooled] = x0[fooled] + (x1[fooled] - x0[fooled]) * beta
    return distance


def fab_targeted(forward, x, y, eps, steps, norm, target_classes=9):
    """FAB-T as AutoAttack's standard version runs it (fab_base.py:perturb with
    targeted=True): one run per target class on the examples still robust; returns which
    examples stay robust."""
    clean_logits, _ = forward(x, y, y)
    ranked = np.argsort(-clean_logits, axis=1, kind="stable")
    robust = ranked[:, 0] == y
    for rank in range(1, min(target_classes, clean_logits.shape[1] - 1) + 1):
        idx = np.flatnonzero(robust)
        if not len(idx):
            break
        distance = fab_run(forward, x[idx], y[idx], ranked[idx, rank], steps, norm)
        robust[idx[distance <= eps]] = False
    return robust


def mlp_forward(weights):
    """forward(x, y, t) for a ReLU network with one hidden layer, gradients in closed form."""
    w1, b1, w2, b2 = weights

    def forward(x, y, t):
        hidden = x.reshape(len(x), -1) @ w1 + b1
        z = np.maximum(hidden, 0.0) @ w2 + b2
        grad = ((hidden > 0) * (w2[:, t] - w2[:, y]).T) @ w1.T
        return z, grad.reshape(x.shape)

    return forward


def _eta_rectangles(rows, cols):
    """square.py:143-157, L2."""
    delta = np.zeros([rows, cols])
    x_c, y_c = rows // 2 + 1, cols // 2 + 1
    c0, c1 = x_c - 1, y_c - 1
    for counter in range(max(x_c, y_c)):
        delta[
            max(c0, 0) : min(c0 + 2 * counter + 1, rows),
            max(0, c1) : min(c1 + 2 * counter + 1, cols),
        ] += 1.0 / (counter + 1) ** 2
        c0, c1 = c0 - 1, c1 - 1
    norm = np.sqrt((delta**2).sum())
    return delta / norm if norm > 0 else delta


def square_pattern(s):
    """square.py:172-186, L2: the pseudo-Gaussian square."""
    delta = np.zeros([s, s])
    delta[: s // 2] = _eta_rectangles(s // 2, s)
    delta[s // 2 :] = -_eta_rectangles(s - s // 2, s)
    return delta / np.sqrt((delta**2).sum())


def _eta(s, rng):
    """square.py:172-190: the pattern, transposed at random."""
    delta = square_pattern(s)
    return delta.T if rng.uniform() > 0.5 else delta


def square_l2(w, b, x, y, eps, queries, rng, p_init=0.8):
    """Square's L2 single run (square.py:305-420), transcribed on NCHW arrays; x given NHWC.
    Returns (x_best NHWC, fooled)."""
    x = np.transpose(x, (0, 3, 1, 2))
    n, c, h, wd = x.shape

    def margin(images):
        z = logits(w, b, np.transpose(images, (0, 2, 3, 1)))
        true = z[np.arange(len(z)), y].copy()
        z[np.arange(len(z)), y] = -np.inf
        return true - z.max(axis=1)

    def l2(t):
        return np.sqrt((t**2).reshape(len(t), -1).sum(-1)).reshape(-1, 1, 1, 1)

    def random_choice(shape):
        return np.sign(rng.uniform(-1, 1, shape))

    delta_init = np.zeros_like(x)
    s = h // 5
    sp_init = (h - s * 5) // 2
    vh = sp_init
    for _ in range(h // s):
        vw = sp_init
        for _ in range(wd // s):
            patch = delta_init[:, :, vh : vh + s, vw : vw + s]
            pattern = _eta(s, rng)[: patch.shape[2], : patch.shape[3]]
            patch += pattern.reshape(1, 1, *pattern.shape) * random_choice([n, c, 1, 1])
            vw += s
        vh += s
    x_best = np.clip(x + delta_init / (l2(delta_init) + 1e-12) * eps, 0.0, 1.0)
    margin_min = margin(x_best)
    for i in range(queries):
        active = margin_min > 0
        if not active.any():
            break
        delta = x_best - x
        p = _p_selection(i, p_init)
        s = max(int(round(math.sqrt(p * h * wd))), 3)
        s = min(s + 1 - s % 2, h, wd)
        vh, vw = int(rng.uniform() * (h - s)), int(rng.uniform() * (wd - s))
        vh2, vw2 = int(rng.uniform() * (h - s)), int(rng.uniform() * (wd - s))
        window_1 = (slice(None), slice(None), slice(vh, vh + s), slice(vw, vw + s))
        window_2 = (slice(None), slice(None), slice(vh2, vh2 + s), slice(vw2, vw2 + s))
        norms_window_1 = np.sqrt((delta[window_1] ** 2).sum(axis=(-2, -1), keepdims=True))
        mask = np.zeros([h, wd])
        mask[window_1[2:]] = 1.0
        mask[window_2[2:]] = 1.0
        norms_windows = np.sqrt(((delta * mask) ** 2).sum(axis=(-2, -1), keepdims=True))
        new = _eta(s, rng).reshape(1, 1, s, s) * random_choice([n, c, 1, 1])
        new = new + delta[window_1] / (1e-12 + norms_window_1)
        budget = np.maximum(eps**2 - l2(delta) ** 2, 0.0) / c + norms_windows**2
        new = new / (1e-12 + np.sqrt((new**2).sum(axis=(-2, -1), keepdims=True))) * np.sqrt(budget)
        delta[window_2] = 0.0
        delta[window_1] = new
        x_new = np.clip(x + delta / (l2(delta) + 1e-12) * eps, 0.0, 1.0)
        margin_new = margin(x_new)
        keep = active & ((margin_new < margin_min) | (margin_new <= 0))
        x_best[keep], margin_min[keep] = x_new[keep], margin_new[keep]
    return np.transpose(x_best, (0, 2, 3, 1)), margin_min <= 0

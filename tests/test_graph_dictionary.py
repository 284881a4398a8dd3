"""Geng16 §4.2 unsupervised transfer (unsupervised/): the cross-view
k-NN graph, Eq. 2–3's objective, the exact Z and D steps against dense
references, monotone alternation with feasible atoms, the soft labels and
§5.2's cross-validation of λ."""
import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp

from unsupervised import graph_dictionary as gd
from unsupervised.lambda_cv import cross_view_rank1, select_lambda, validation_half
from unsupervised.neighbours import nearest, nearest_both_ways
from unsupervised.soft_labels import cross_view_soft_labels


def _brute_graph(a, b, k):
    n = len(a) + len(b)
    w = np.zeros((n, n))
    dist = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    for i in range(len(a)):
        for j in np.argsort(dist[i])[:k]:
            w[i, len(a) + j] = w[len(a) + j, i] = 1
    for j in range(len(b)):
        for i in np.argsort(dist[:, j])[:k]:
            w[i, len(a) + j] = w[len(a) + j, i] = 1
    return w


def test_cross_view_knn_graph_matches_brute_force():
    rng = np.random.RandomState(0)
    a, b = rng.randn(7, 3), rng.randn(5, 3)
    w = gd.cross_view_knn_graph(a, b, 2)
    assert sp.issparse(w) and w.shape == (12, 12)
    dense = w.toarray()
    np.testing.assert_array_equal(dense, _brute_graph(a, b, 2))
    np.testing.assert_array_equal(dense, dense.T)
    assert not dense[:7, :7].any() and not dense[7:, 7:].any()   # edges only across views
    assert (dense[:7].sum(1) >= 2).all() and (dense[7:].sum(1) >= 2).all()


def test_nearest_in_blocks_matches_brute_force():
    rng = np.random.RandomState(1)
    a, b = rng.randn(23, 4), rng.randn(17, 4)
    dist = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    a_to_b, b_to_a = nearest_both_ways(a, b, 3, block=5)   # several blocks, a partial last one
    np.testing.assert_array_equal(a_to_b, np.argsort(dist, 1)[:, :3])
    np.testing.assert_array_equal(b_to_a, np.argsort(dist, 0)[:3].T)
    np.testing.assert_array_equal(nearest(b, a, 4, block=6), np.argsort(dist.T, 1)[:, :4])
    with pytest.raises(ValueError, match="k must be"):
        nearest_both_ways(a, b, 18)


def _problem(n_a=20, n_b=15, dim=12, atoms=5, k=3, seed=0):
    rng = np.random.RandomState(seed)
    a, b = rng.randn(n_a, dim), rng.randn(n_b, dim)
    D = rng.randn(atoms, dim)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return np.vstack([a, b]), a, b, D, gd.cross_view_knn_graph(a, b, k)


def test_objective_is_eq2_plus_eq3_for_any_nonnegative_w():
    Y, _, _, D, _ = _problem()
    rng = np.random.RandomState(3)
    Z = rng.randn(len(Y), len(D))
    W = sp.random(len(Y), len(Y), density=0.1, random_state=4, format="csr")   # not symmetric
    omega = sum(W[i, j] * np.sum((Z[i] - Z[j]) ** 2) for i, j in zip(*W.nonzero()))
    expected = np.sum((Y - Z.dot(D)) ** 2) + 0.3 * omega
    assert gd.objective(Y, D, Z, W, 0.3) == pytest.approx(expected, rel=1e-12)


def test_z_step_equals_dense_kronecker_solve():
    Y, _, _, D, W = _problem()
    L = gd.laplacian(W)
    lam, (n, k) = 0.7, (len(Y), len(D))
    # Z DDᵀ + 2λ L Z = Y Dᵀ, vectorised column-major: (DDᵀ ⊗ I + I ⊗ 2λL) vec Z = vec(Y Dᵀ)
    system = np.kron(D.dot(D.T), np.eye(n)) + np.kron(np.eye(k), 2 * lam * L.toarray())
    ref = np.linalg.solve(system, Y.dot(D.T).ravel(order="F")).reshape((n, k), order="F")
    Z, _ = gd.z_step(Y, D, L, lam)
    np.testing.assert_allclose(Z, ref, rtol=0, atol=1e-7 * np.abs(ref).max())
    warm, _ = gd.z_step(Y, D, L, lam, Z0=ref + 0.1)
    np.testing.assert_allclose(warm, ref, rtol=0, atol=1e-7 * np.abs(ref).max())


def test_z_step_with_dependent_atoms_still_minimises():
    # a repeated atom: DDᵀ singular, the minimiser is not unique but its
    # objective is; the minimum-norm dense solution is the reference
    Y, _, _, D, W = _problem()
    D2 = np.vstack([D, D[:1]])
    L = gd.laplacian(W)
    lam, (n, k) = 0.7, (len(Y), len(D2))
    system = np.kron(D2.dot(D2.T), np.eye(n)) + np.kron(np.eye(k), 2 * lam * L.toarray())
    ref = np.linalg.lstsq(system, Y.dot(D2.T).ravel(order="F"), rcond=None)[0]
    ref = ref.reshape((n, k), order="F")
    Z, _ = gd.z_step(Y, D2, L, lam)
    assert np.isfinite(Z).all()
    assert gd.objective(Y, D2, Z, W, lam) == pytest.approx(gd.objective(Y, D2, ref, W, lam),
                                                           rel=1e-8)


def test_d_step_equals_constrained_reference_and_meets_kkt():
    rng = np.random.RandomState(5)
    Y = rng.randn(20, 6)
    # Large codes need short atoms: some constraints active, some not.
    Z = rng.randn(20, 3) * np.array([0.2, 5.0, 0.5])
    D, dual = gd.d_step(Y, Z)

    def f(d):
        r = Y - Z.dot(d.reshape(3, 6))
        return np.sum(r * r), (-2 * Z.T.dot(r)).ravel()

    def row(i):
        return {"type": "ineq", "fun": lambda d: 1 - np.sum(d.reshape(3, 6)[i] ** 2),
                "jac": lambda d: (-2 * np.eye(3)[i][:, None] * d.reshape(3, 6)).ravel()}

    ref = scipy.optimize.minimize(f, np.zeros(18), jac=True, constraints=[row(i) for i in range(3)],
                                  method="SLSQP", options=dict(ftol=1e-14, maxiter=1000)).x.reshape(3, 6)
    np.testing.assert_allclose(D, ref, atol=1e-5)
    norms = np.sum(D * D, axis=1)
    assert (norms <= 1 + 1e-6).all() and (norms < 0.99).any() and np.isclose(norms, 1).any()
    # KKT: stationarity −2Zᵀ(Y − ZD) + 2ΛD = 0, Λ ≥ 0, λ_k (||d_k||² − 1) = 0
    grad = -2 * Z.T.dot(Y - Z.dot(D)) + 2 * dual[:, None] * D
    assert np.abs(grad).max() < 1e-6 * np.abs(Z.T.dot(Y)).max()
    assert (dual >= 0).all() and np.abs(dual * (norms - 1)).max() < 1e-8


def test_learn_objective_falls_monotonically_and_atoms_stay_feasible():
    rng = np.random.RandomState(6)
    a, b = rng.randn(40, 16) + 1.0, rng.randn(30, 16)
    res = gd.learn(a, b, num_atoms=8, lam=0.3, k=4, iters=12, tol=0.0)
    hist = np.array(res.history)
    assert len(hist) == 24 and len(res.atom_norm_max) == 12
    assert (np.diff(hist) <= 1e-10 * hist[:-1]).all(), hist
    assert hist[-1] < 0.95 * hist[0]
    assert max(res.atom_norm_max) <= 1 + 1e-6
    assert res.D.shape == (8, 16) and res.Z.shape == (70, 8)
    np.testing.assert_array_equal(res.code_b, res.Z[40:])
    assert gd.objective(np.vstack([a, b]), res.D, res.Z, res.W, 0.3) == pytest.approx(hist[-1])


def test_learn_stops_at_tol_and_checks_its_arguments():
    rng = np.random.RandomState(7)
    a, b = rng.randn(30, 10), rng.randn(30, 10)
    assert len(gd.learn(a, b, num_atoms=4, k=3, iters=50, tol=1e-2).history) < 100
    with pytest.raises(ValueError, match="num_atoms"):
        gd.learn(a, b, num_atoms=11, k=3)
    with pytest.raises(ValueError, match="lam >= 0"):
        gd.learn(a, b, num_atoms=4, lam=-1.0, k=3)
    with pytest.raises(ValueError, match="iters >= 1"):
        gd.learn(a, b, num_atoms=4, k=3, iters=0)


def test_soft_labels_hand_computed():
    code_a = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    code_b = np.array([[9.0, 1.0], [1.0, 1.0], [1.0, 8.0], [0.4, 0.2], [6.0, 5.0]])
    labels = cross_view_soft_labels(code_a, code_b)
    np.testing.assert_array_equal(labels.a, [0, 1, 2])
    # [6, 5]: 61 to A0, 41 to A1, 61 to A2
    np.testing.assert_array_equal(labels.b, [1, 0, 2, 0, 1])


def _people(n_people=80, per_view=4, dim=32, sigma=1.2, seed=0):
    """Identities as Gaussian clusters: camera 1 is view A, cameras 2 and 3
    share view B; noise so strong that raw cross-view matching is unreliable."""
    rng = np.random.RandomState(seed)
    centres = rng.randn(n_people, dim)
    ids = np.repeat(np.arange(n_people), 2 * per_view)
    cams = np.tile(np.r_[np.ones(per_view, int), 2 + np.arange(per_view) % 2], n_people)
    return centres[ids] + sigma * rng.randn(len(ids), dim), cams, ids


def test_select_lambda_prefers_the_graph_where_it_helps():
    feats, cams, ids = _people()
    learn_args = dict(num_atoms=16, k=5, iters=10)
    choice = select_lambda(feats, cams, ids, candidates=(0.0, 0.1, 1.0), **learn_args)
    assert choice.lam in (0.1, 1.0)
    assert set(choice.scores) == {0.0, 0.1, 1.0}
    assert all(0.0 <= s <= 1.0 for s in choice.scores.values())
    assert choice.scores[choice.lam] > choice.scores[0.0] + 0.05
    # The chosen λ also beats λ = 0 on the other (unseen) half of the identities.
    other = ~validation_half(ids)
    a, b = other & (cams == 1), other & (cams != 1)

    def rank1(lam):
        res = gd.learn(feats[a], feats[b], lam=lam, **learn_args)
        return cross_view_rank1(res.code_a, res.code_b, ids[a], ids[b])

    assert rank1(choice.lam) > rank1(0.0) + 0.05


def test_select_lambda_checks_its_inputs():
    feats, cams, ids = _people(n_people=4)
    with pytest.raises(ValueError, match="features"):
        select_lambda(feats[:-1], cams, ids)
    with pytest.raises(ValueError, match="no candidate"):
        select_lambda(feats, cams, ids, candidates=())


def test_dependent_samples_start_from_singular_vectors():
    # many copies of few distinct rows: random samples as atoms would repeat
    rng = np.random.RandomState(5)
    base = rng.randn(6, 10)
    Y = np.repeat(base, 8, axis=0) + 1e-9 * rng.randn(48, 10)
    D = gd.initial_atoms(Y, 5, seed=0)
    np.testing.assert_allclose(D.dot(D.T), np.eye(5), atol=1e-8)
    with pytest.raises(ValueError, match="span 6 dimensions, fewer than num_atoms=8"):
        gd.initial_atoms(np.repeat(base, 8, axis=0), 8)
    result = gd.learn(Y[:24], Y[24:], num_atoms=5, lam=0.1, k=2, iters=3)
    assert np.all(np.diff(result.history) <= 1e-9 * abs(result.history[0]))


def test_d_step_with_fewer_samples_than_atoms():
    """ZᵀZ singular (3 codes of 5 atoms, one atom unused, as few or
    degenerate features give): the dual still solves, the atoms stay
    feasible and fit better than none."""
    rng = np.random.RandomState(7)
    Y, Z = rng.randn(3, 6), rng.randn(3, 5)
    Z[:, 4] = 0
    D, dual = gd.d_step(Y, Z)
    assert np.isfinite(D).all() and (np.sum(D * D, axis=1) <= 1 + 1e-6).all()
    assert (dual >= 0).all()
    assert np.sum((Y - Z.dot(D)) ** 2) < 0.5 * np.sum(Y ** 2)

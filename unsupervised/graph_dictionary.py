"""Graph-regularised dictionary learning on unlabelled target features
(Geng16 §4.2, Eqs. 2–3):

    (D*, Z*) = min_{D,Z} ||Y − DZ||²_F + λ Σ_ij W_ij ||z_i − z_j||²   s.t. ||d_k||² ≤ 1

with W the cross-view k-NN graph of the target set. The paper stores
samples as columns (Y ∈ R^{D×Mt}); this module stores them as rows, as
every feature file of this project does: Y is Mt × dim (rows [Ya; Yb]), Z is
Mt × K (row i is the code of sample i) and the dictionary is K × dim (row k
is atom d_k), so Y ≈ Z·D. With L = diag(W1) − W, Σ_ij W_ij ||z_i − z_j||² =
2 tr(Zᵀ L Z).

Alternation, each step solved exactly so the objective never rises:
  Z step (D fixed): Z DDᵀ + 2λ L Z = Y Dᵀ, a Sylvester equation. With
      DDᵀ = V S Vᵀ (K × K) and X = Z V it splits into K sparse SPD systems
      (s_k I + 2λ L) x_k = (Y Dᵀ V)_k, solved by Jacobi-preconditioned
      conjugate gradients, all K at once, warm-started from the previous Z.
      A sparse LU (splu) of one such system on Market's 12,936-node graph
      takes ~33 s and 44 M fill entries (k-NN graphs in 1,024-D have hubs
      and no separators), against ~0.1 s per CG iteration for all 256
      columns together, 15–20 iterations a step. CG from the previous Z
      lowers each column's quadratic at every iteration, so the step cannot
      raise the objective even before it converges; it runs to a relative
      residual of 1e-8.
  D step (Z fixed): min ||Y − ZD||² s.t. ||d_k||² ≤ 1 through its Lagrange
      dual (Lee, Battle, Raina & Ng 2007): D(Λ) = (ZᵀZ + Λ)⁻¹ ZᵀY, maximise
      the dual over Λ = diag(λ_k ≥ 0) (L-BFGS-B; K variables, gradient
      ||d_k||² − 1), until the dual stops improving in float64 (on
      Market-sized problems |1 − ||d_k||²| ≲ 1e-8 for the active atoms).
      Atoms left above unit norm by that tolerance are rescaled onto the
      sphere.
"""
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse as sp
from tqdm import tqdm

from common.progress import mininterval
from unsupervised.neighbours import nearest_both_ways

# Defaults (the paper gives none).
# K = 256 atoms for 1,024-D pool5 features: Eq. 2 has no sparsity term, so
# with K ≥ dim the atoms could span the whole feature space, the
# reconstruction would be exact for any codes' change of basis and only the
# graph term would shape Z; K < dim makes D a learnt subspace that drops the
# directions the two views do not share. dim/4 also makes each Z step (K
# sparse systems) 4 × cheaper than K = dim.
NUM_ATOMS = 256
# The dual variables' floor, relative to the mean of diag(ZᵀZ) (d_step).
DUAL_FLOOR = 1e-10
# k = 5 cross-view neighbours: a Market-1501 identity has ~3 images in one
# camera, so true cross-view matches per image are few; a small k keeps
# most edges between images of the same person, and symmetrising (an edge
# when either end picks the other) already raises the mean degree to ~2k.
K_NEIGHBOURS = 5
# λ = 0.1: the graph term's curvature 2λL (its diagonal 2λ·degree ≈ 2λ·2k
# = 2 at k = 5) is then of the order of the reconstruction's DDᵀ (unit
# atoms: eigenvalues around 1), so neither term swamps the other; on the
# synthetic identity clusters of tests/test_graph_dictionary.py 0.1–1 is the
# best range. §5.2 picks λ by cross-validation (lambda_cv.py).
LAM = 0.1
ITERS = 5         # alternations; §4.2 needs cross-view nearest neighbours in Z, not a converged optimum
TOL = 1e-4        # stop when one alternation lowers the objective by less than this fraction
CG_RTOL = 1e-8    # relative residual of each Z-step system
CG_MAXITER = 2000
SINGULAR = 1e-10  # eigenvalue ratio below which DDᵀ counts as singular
DUAL_GTOL = 1e-10  # L-BFGS-B's bound on |1 − ||d_k||²| (float64 usually stops it first)


def cross_view_knn_graph(feat_a, feat_b, k=K_NEIGHBOURS):
    """W (scipy.sparse CSR, Mt × Mt, rows and columns ordered [A; B]) of
    Eq. 3: W_ij = 1 when j is among the k nearest neighbours of i in the
    *other* camera view, or i among j's (symmetrised by max), 0 otherwise.
    feat_a, feat_b: camera-A and camera-B features as rows."""
    feat_a, feat_b = np.asarray(feat_a), np.asarray(feat_b)
    a_to_b, b_to_a = nearest_both_ways(feat_a, feat_b, k)
    na, nb = len(feat_a), len(feat_b)
    rows = np.concatenate([np.repeat(np.arange(na), k), na + np.repeat(np.arange(nb), k)])
    cols = np.concatenate([na + a_to_b.ravel(), b_to_a.ravel()])
    w = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(na + nb, na + nb))
    return w.maximum(w.T).tocsr()


def laplacian(w):
    """L = diag(W̄1) − W̄ of W̄ = (W + Wᵀ)/2, so that Σ_ij W_ij ||z_i − z_j||²
    = 2 tr(Zᵀ L Z) for any non-negative W (Eq. 3 only sees W's symmetric
    part)."""
    w = sp.csr_matrix(w, dtype=np.float64)
    w = (w + w.T) * 0.5
    return (sp.diags(np.asarray(w.sum(axis=1)).ravel()) - w).tocsr()


def objective(Y, D, Z, W, lam):
    """Eq. 2 with Eq. 3: ||Y − ZD||²_F + λ Σ_ij W_ij ||z_i − z_j||² (rows =
    samples, rows of D = atoms)."""
    Y, D, Z = (np.asarray(x, np.float64) for x in (Y, D, Z))
    residual = Z.dot(D)
    residual -= Y
    omega = 2.0 * np.einsum("ij,ij->", Z, laplacian(W).dot(Z))
    return float(np.einsum("ij,ij->", residual, residual) + lam * omega)


def z_step(Y, D, L, lam, Z0=None, rtol=CG_RTOL, maxiter=CG_MAXITER):
    """argmin_Z ||Y − ZD||² + 2λ tr(Zᵀ L Z) (Geng16 Eq. 2, D fixed) for the
    Laplacian L; returns (Z, CG iterations). Z0 warm-starts the solve."""
    gram = D.dot(D.T)
    s, V = np.linalg.eigh(gram)
    # Without a sparsity term Eq. 2 lets atoms drift towards each other over
    # the alternations (DDᵀ's smallest eigenvalue falls by ~1e3 a round on
    # real features). A direction with s_k ≈ 0 barely touches the
    # reconstruction (its right-hand side is ≈ 0 too); flooring s_k keeps
    # its system (s_k I + 2λL) positive definite on L's constant vectors,
    # changing the step's objective by at most SINGULAR·s_max·||Z||².
    s = np.maximum(s, SINGULAR * s[-1])
    B = Y.dot(D.T).dot(V)
    X = np.zeros_like(B) if Z0 is None else Z0.dot(V)
    shift = 2.0 * lam
    tmp = np.empty_like(B)   # one reused N × K buffer: fresh 26 MB temporaries cost ~15 % more

    def apply(P):
        out = L.dot(P)
        out *= shift
        np.multiply(P, s, out=tmp)
        out += tmp
        return out

    def columns_dot(P, Q):
        return np.einsum("ij,ij->j", P, Q)

    def ratio(num, den):  # 0 where a column is solved exactly (its residual is 0)
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    # All K columns step together (one sparse product per iteration); those
    # that converge first keep refining, which costs less than slicing out
    # the unfinished ones.
    precond = 1.0 / (s[None, :] + shift * L.diagonal()[:, None])
    R = B - apply(X)
    target = (rtol * np.linalg.norm(B, axis=0)) ** 2
    Zr = precond * R
    P = Zr.copy()
    rz = columns_dot(R, Zr)
    it = 0
    while it < maxiter and np.any(columns_dot(R, R) > target):
        it += 1
        AP = apply(P)
        alpha = ratio(rz, columns_dot(P, AP))
        X += np.multiply(P, alpha, out=tmp)
        R -= np.multiply(AP, alpha, out=tmp)
        np.multiply(precond, R, out=Zr)
        rz_new = columns_dot(R, Zr)
        P *= ratio(rz_new, rz)
        P += Zr
        rz = rz_new
    return X.dot(V.T), it


def d_step(Y, Z, dual0=None, gtol=DUAL_GTOL):
    """argmin_D ||Y − ZD||² s.t. ||d_k||² ≤ 1 (Geng16 Eq. 2, Z fixed) by the
    Lagrange dual of Lee et al. 2007; returns (D, dual variables). dual0
    warm-starts the dual."""
    ztz = Z.T.dot(Z)
    zty = Z.T.dot(Y)
    mmt = zty.dot(zty.T)
    K = len(ztz)

    def negative_dual(dual):
        # −g(Λ) + const = tr(ZᵀY Yᵀ Z (ZᵀZ + Λ)⁻¹) + Σλ_k; ∂/∂λ_k = 1 − ||d_k||².
        factor = scipy.linalg.cho_factor(ztz + np.diag(dual))
        cm = scipy.linalg.cho_solve(factor, mmt)            # C⁻¹MMᵀ
        norms = np.diag(scipy.linalg.cho_solve(factor, cm.T))  # diag(C⁻¹MMᵀC⁻¹) = ||d_k||²
        return np.trace(cm) + dual.sum(), 1.0 - norms

    # The dual variables are >= 0. Where few or degenerate codes leave ZᵀZ
    # singular (fewer samples than atoms, or atoms no code uses), a floor
    # far below the data's scale keeps ZᵀZ + Λ positive definite.
    floor = 0.0
    try:
        scipy.linalg.cho_factor(ztz)
    except np.linalg.LinAlgError:
        floor = DUAL_FLOOR * max(np.trace(ztz) / K, np.finfo(np.float64).tiny)
    start = np.full(K, floor) if dual0 is None else np.maximum(dual0, floor)
    found = scipy.optimize.minimize(negative_dual, start, jac=True, method="L-BFGS-B",
                                    bounds=[(floor, None)] * K,
                                    options=dict(gtol=gtol, ftol=0.0, maxiter=10000, maxcor=30))
    D = scipy.linalg.solve(ztz + np.diag(found.x), zty, assume_a="pos")
    norms = np.linalg.norm(D, axis=1)
    D /= np.maximum(norms, 1.0)[:, None]
    return D, found.x


@dataclass
class Dictionary:
    """learn()'s result: atoms D (K × dim), codes Z (Mt × K, rows [A; B]),
    the graph W, the objective after every Z and D step, the largest atom
    norm after every D step and the CG iterations of every Z step."""
    D: np.ndarray
    Z: np.ndarray
    W: sp.csr_matrix
    num_a: int
    history: list = field(default_factory=list)
    atom_norm_max: list = field(default_factory=list)
    cg_iterations: list = field(default_factory=list)

    @property
    def code_a(self):
        return self.Z[:self.num_a]

    @property
    def code_b(self):
        return self.Z[self.num_a:]


def initial_atoms(Y, num_atoms, seed=0):
    """`num_atoms` random rows of Y (seeded), scaled to unit norm. Rows that
    are (nearly) linearly dependent — the same person's near-identical
    features, units a ReLU keeps at zero — would make the Z step singular;
    then the top right singular vectors of Y are the start instead, and a Y
    of lower rank than `num_atoms` is refused."""
    D = Y[np.random.RandomState(seed).choice(len(Y), num_atoms, replace=False)]
    D = D / np.maximum(np.linalg.norm(D, axis=1, keepdims=True), 1e-300)
    s = np.linalg.eigvalsh(D.dot(D.T))
    if s[0] > SINGULAR * s[-1]:
        return D
    _, sv, vt = np.linalg.svd(Y, full_matrices=False)
    if sv[num_atoms - 1] <= SINGULAR * sv[0]:
        raise ValueError("learn: the features span %d dimensions, fewer than num_atoms=%d"
                         % (int((sv > SINGULAR * sv[0]).sum()), num_atoms))
    return vt[:num_atoms]


def learn(feat_a, feat_b, num_atoms=NUM_ATOMS, lam=LAM, k=K_NEIGHBOURS, iters=ITERS, seed=0,
          tol=TOL, progress=False):
    """Geng16 §4.2: learn D and Z for the target set's camera-A and camera-B
    features (rows); returns a Dictionary. D starts from `num_atoms` random
    samples of Y (seeded), each scaled to unit norm (initial_atoms)."""
    Y = np.vstack([np.asarray(feat_a, np.float64), np.asarray(feat_b, np.float64)])
    if not 1 <= num_atoms <= min(Y.shape):
        raise ValueError("learn: num_atoms must be in [1, %d] (samples and dimensions), got %r"
                         % (min(Y.shape), num_atoms))
    if lam < 0 or iters < 1:
        raise ValueError("learn: needs lam >= 0 and iters >= 1, got %r and %r" % (lam, iters))
    W = cross_view_knn_graph(feat_a, feat_b, k)
    L = laplacian(W)
    D = initial_atoms(Y, num_atoms, seed)
    out = Dictionary(D, None, W, len(feat_a))
    Z, dual = None, None
    steps = tqdm(range(iters), desc="dictionary", unit="iter", disable=not progress,
                 mininterval=mininterval())
    for it in steps:
        Z, cg = z_step(Y, D, L, lam, Z)
        out.cg_iterations.append(cg)
        out.history.append(objective(Y, D, Z, W, lam))
        D, dual = d_step(Y, Z, dual)
        out.atom_norm_max.append(float(np.linalg.norm(D, axis=1).max()))
        out.history.append(objective(Y, D, Z, W, lam))
        steps.set_postfix(objective="%.6g" % out.history[-1], cg=cg, refresh=False)
        if it > 0 and out.history[-3] - out.history[-1] <= tol * abs(out.history[-1]):
            break
    out.D, out.Z = D, Z
    return out

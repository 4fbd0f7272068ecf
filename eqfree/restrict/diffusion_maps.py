"""Diffusion maps (Coifman & Lafon 2006; Crabtree, Bello-Rivas, Ferguson & Kevrekidis, "GANs and closures:
micro-macro consistency in multiscale modeling", appendix B).

For data x_1..x_N and bandwidth ε:

    A_ij = exp(−‖x_i − x_j‖² / (2ε))                          (B.1)
    P_ii = Σ_j A_ij,    Ā = P^{−α} A P^{−α}                     (B.2–B.3)
    W = D^{−1} Ā,       D_ii = Σ_j Ā_ij                          (B.4)

W is row-stochastic and similar to the symmetric S = D^{−1/2} Ā D^{−1/2}; the eigenpairs
S v = λ v give W's right eigenvectors ψ = D^{−1/2} v, so a symmetric (sparse) eigensolver applies.
α = 0 is the graph Laplacian, α = 1/2 Fokker–Planck, α = 1 Laplace–Beltrami (density removed).
Note: the printed (B.3) reads P^{−α/2} A P^{−α/2}; that is this α halved. eqfree follows Coifman &
Lafon, so α = 1 removes the sampling density.

Eigenvectors are scaled so that Σ_i π_i ψ_k(x_i)² = 1 with π = D/ΣD, W's stationary law (the
trivial ψ_0 is then ≡ 1). Duplicate
points are kept: each counts as a sample (with α = 1 the density normalization discounts them).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg, sparse
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import eigsh
from scipy.spatial import cKDTree

from ..base import Estimator
from ..errors import InputError
from ..seeding import SeedLike, as_seed_sequence

#: the sparse kernel drops values below this by default: cut-off radius √(2ε ln(1/KERNEL_TOLERANCE))
KERNEL_TOLERANCE = 1e-12


def as_samples(X, name: str = "X") -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0:
        raise InputError(f"{name} must have shape (n_samples, n_features), got {X.shape}")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        raise InputError(f"{name} has non-finite rows {np.flatnonzero(bad)[:10].tolist()}: drop or repair them first")
    return X


def kernel_sum_bandwidth(X: np.ndarray, *, n_samples: int = 1000, seed: SeedLike) -> float:
    """ε at the steepest slope of log Σ_ij exp(−d_ij²/(2ε)) against log ε (the kernel-sum rule).

    Between ε so small that only i = j counts and ε so large that every pair does, the log-log slope
    rises to about d/2 (d the intrinsic dimension); its maximum lies in the regime where the kernel sees
    the local geometry. Computed on at most ``n_samples`` points, over a log grid of candidate ε.
    """
    rng = np.random.default_rng(as_seed_sequence(seed))
    sample = X if len(X) <= n_samples else X[rng.choice(len(X), n_samples, replace=False)]
    return steepest_kernel_sum(squared_distances(sample, sample))


def steepest_kernel_sum(squared: np.ndarray) -> float:
    positive = squared[squared > 0]
    if positive.size == 0:
        raise InputError("all points coincide: no bandwidth separates them")
    grid = np.logspace(np.log10(positive.min()) - 1, np.log10(positive.max()) + 1, 50)
    log_sums = np.array([np.log(np.exp(-squared / (2 * eps)).sum()) for eps in grid])
    return float(grid[np.argmax(np.gradient(log_sums, np.log(grid)))])


def squared_distances(Y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """‖y_i − x_j‖² of all pairs, ``(len(Y), len(X))``, clipped at 0 against round-off."""
    return (np.sum(Y**2, 1)[:, None] + np.sum(X**2, 1)[None, :] - 2 * Y @ X.T).clip(0)


def mahalanobis_squared_distances(X: np.ndarray, precisions: np.ndarray) -> np.ndarray:
    """Eq. (4.2): ‖x_j − x_i‖²_M = ½ (x_j − x_i)ᵀ (C†(x_i) + C†(x_j)) (x_j − x_i), all pairs, ``(N, N)``.

    ``precisions`` holds the pseudoinverses C†(x_i), shape ``(N, d, d)``.
    """
    # q_i(y) = yᵀ C_i† y expanded: x_jᵀC_i†x_j − 2 x_iᵀC_i†x_j + x_iᵀC_i†x_i, for each i's matrix
    quadratic = np.einsum("iab,ja,jb->ij", precisions, X, X)
    cross = np.einsum("iab,ia,jb->ij", precisions, X, X)
    own = np.einsum("iab,ia,ib->i", precisions, X, X)
    one_sided = quadratic - 2 * cross + own[:, None]
    return (0.5 * (one_sided + one_sided.T)).clip(0)


def local_noise_covariances(evolve, X, *, n_steps: int, n_bursts: int, seed) -> np.ndarray:
    """C(x_i) ≈ Cov[x(τ) − x_i] / τ from ``n_bursts`` bursts of ``n_steps`` of the fine simulator at each
    point (one Evolve call over N·n_bursts walkers), shape ``(N, d, d)``. For short τ this is the local
    diffusion tensor σσᵀ, the drift contributing O(τ)."""
    X = as_samples(X)
    if n_bursts < 2:
        raise InputError(f"n_bursts must be at least 2 to estimate a covariance, got {n_bursts}")
    starts = np.repeat(X, n_bursts, axis=0)
    ends = evolve(starts, n_steps, seed=seed, save_every=n_steps).values[-1]
    steps = (ends - starts).reshape(len(X), n_bursts, X.shape[1])
    steps = steps - steps.mean(axis=1, keepdims=True)
    return np.einsum("nba,nbc->nac", steps, steps) / (n_bursts - 1) / (n_steps * evolve.dt)


class DiffusionMaps(Estimator):
    """Diffusion maps estimator (:mod:`eqfree.base` convention).

    Parameters
    ----------
    n_components : number of diffusion coordinates returned by :meth:`transform` (after selection).
    epsilon : kernel bandwidth ε of (B.1), or ``"auto"`` for :func:`kernel_sum_bandwidth`.
    alpha : density renormalization α ∈ [0, 1].
    n_eigenpairs : eigenpairs computed besides the trivial one (default: enough for selection).
    kernel : ``"dense"``, ``"sparse"`` (cut-off kernel on a KD-tree) or ``"auto"`` (sparse above 3000 points).
    cut_off : radius of the sparse kernel; default √(2ε ln(1/KERNEL_TOLERANCE)), where the kernel is 1e-12.
    select : ``"nonharmonic"`` (local linear regression, Dsilva et al. 2018) or ``"leading"``.

    Attributes
    ----------
    epsilon_ : the bandwidth used.
    eigenvalues_ : ``(n_eigenpairs + 1,)`` descending, the first is 1.
    eigenvectors_ : ``(N, n_eigenpairs + 1)`` right eigenvectors of W, the first constant.
    residuals_ : local-linear-regression residual of each eigenvector (ψ_0: 0, ψ_1: 1).
    selected_ : indices of the eigenvectors returned by :meth:`transform`.
    X_, density_ : the training data and its kernel density p_i = Σ_j A_ij (for the Nyström extension).
    """

    def __init__(self, *, n_components: int = 1, epsilon: float | str = "auto", alpha: float = 1.0,
                 n_eigenpairs: int | None = None, kernel: str = "auto", cut_off: float | None = None,
                 select: str = "nonharmonic"):
        self.n_components = n_components
        self.epsilon = epsilon
        self.alpha = alpha
        self.n_eigenpairs = n_eigenpairs
        self.kernel = kernel
        self.cut_off = cut_off
        self.select = select

    # -- fitting --------------------------------------------------------------------------------
    def _check_parameters(self, n_samples: int) -> int:
        if not (isinstance(self.n_components, (int, np.integer)) and self.n_components >= 1):
            raise InputError(f"n_components must be a positive integer, got {self.n_components!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise InputError(f"alpha must lie in [0, 1], got {self.alpha}")
        if self.kernel not in ("auto", "dense", "sparse"):
            raise InputError(f"kernel must be 'auto', 'dense' or 'sparse', got {self.kernel!r}")
        if self.cut_off is not None and not self.cut_off > 0:
            raise InputError(f"cut_off must be a positive radius, got {self.cut_off!r}")
        if self.select not in ("nonharmonic", "leading"):
            raise InputError(f"select must be 'nonharmonic' or 'leading', got {self.select!r}")
        number = isinstance(self.epsilon, (int, float)) and np.isfinite(self.epsilon) and self.epsilon > 0
        if not (self.epsilon == "auto" or number):
            raise InputError(f"epsilon must be a positive number or 'auto', got {self.epsilon!r}")
        default = self.n_components if self.select == "leading" else max(2 * self.n_components + 4, 8)
        n_eigenpairs = self.n_eigenpairs or default
        if n_eigenpairs < self.n_components:
            raise InputError(f"n_eigenpairs = {n_eigenpairs} < n_components = {self.n_components}")
        n_eigenpairs = min(n_eigenpairs, n_samples - 2)
        if n_eigenpairs < self.n_components:
            raise InputError(
                f"{n_samples} points give at most {n_samples - 2} nontrivial eigenpairs, fewer than "
                f"n_components = {self.n_components}: provide more data"
            )
        return n_eigenpairs

    def _kernel(self, X: np.ndarray, Y: np.ndarray | None = None):
        """A(Y, X) (B.1): dense array, or sparse with pairs beyond the cut-off radius dropped."""
        Y = X if Y is None else Y
        if not self.sparse_:
            return np.exp(-squared_distances(Y, X) / (2 * self.epsilon_))
        radius = self.cut_off or np.sqrt(2 * self.epsilon_ * np.log(1 / KERNEL_TOLERANCE))
        distances = cKDTree(Y).sparse_distance_matrix(self.tree_, radius, output_type="coo_matrix")
        values = np.exp(-(distances.data**2) / (2 * self.epsilon_))
        return sparse.csr_matrix((values, (distances.row, distances.col)), shape=(len(Y), len(X)))

    def fit(self, X, covariances=None, *, seed: SeedLike) -> DiffusionMaps:
        """Fit on data ``(N, d)``; with ``covariances`` ``(N, d, d)`` (the local noise covariances C(x_i),
        e.g. from :func:`local_noise_covariances`) the kernel uses the Mahalanobis distance (4.2) of
        Singer & Coifman (2008) instead of the Euclidean one (dense kernel). ``seed`` draws the subsample
        on which ``epsilon="auto"`` is chosen."""
        X = as_samples(X)
        n = len(X)
        n_eigenpairs = self._check_parameters(n)
        self.precisions_ = None if covariances is None else self._precisions(covariances, X.shape)
        self.sparse_ = self.precisions_ is None and (self.kernel == "sparse" or (self.kernel == "auto" and n > 3000))
        self.tree_ = cKDTree(X) if self.sparse_ else None
        if self.precisions_ is None:
            self.epsilon_ = kernel_sum_bandwidth(X, seed=seed) if self.epsilon == "auto" else float(self.epsilon)
            A = self._kernel(X)
        else:
            squared = mahalanobis_squared_distances(X, self.precisions_)
            sample = np.random.default_rng(as_seed_sequence(seed)).choice(n, min(n, 1000), replace=False)
            self.epsilon_ = (steepest_kernel_sum(squared[np.ix_(sample, sample)]) if self.epsilon == "auto"
                             else float(self.epsilon))
            A = np.exp(-squared / (2 * self.epsilon_))
        graph = A if self.sparse_ else sparse.csr_matrix(A > KERNEL_TOLERANCE)
        n_parts, labels = connected_components(graph, directed=False)
        if n_parts > 1:
            raise InputError(
                f"the kernel graph at epsilon = {self.epsilon_:.3g} falls apart into {n_parts} disconnected "
                f"pieces (sizes {np.bincount(labels)[:5].tolist()}...); choose a larger epsilon, e.g. "
                f"{4 * self.epsilon_:.3g}, or check the data for separate clusters"
            )
        p = np.asarray(A.sum(axis=1)).ravel()
        A_bar = self._normalize(A, p, p)
        d = np.asarray(A_bar.sum(axis=1)).ravel()
        scale = 1 / np.sqrt(d)
        if self.sparse_:
            S = sparse.diags(scale) @ A_bar @ sparse.diags(scale)
            S = (S + S.T) / 2
            values, vectors = eigsh(S, k=n_eigenpairs + 1, which="LA", v0=np.sqrt(d))
        else:
            S = scale[:, None] * A_bar * scale[None, :]
            values, vectors = linalg.eigh((S + S.T) / 2, subset_by_index=(n - n_eigenpairs - 1, n - 1))
        order = np.argsort(values)[::-1]
        psi = scale[:, None] * vectors[:, order]
        psi /= np.sqrt(np.sum((d / d.sum())[:, None] * psi**2, axis=0))
        psi *= np.sign(psi[np.argmax(np.abs(psi), axis=0), np.arange(psi.shape[1])])  # fixed sign convention
        # C order, as eqfree.base.load restores them: the Nyström products then sum in the same order
        self.X_ = np.ascontiguousarray(X)
        self.density_ = p
        self.eigenvalues_ = values[order]
        self.eigenvectors_ = np.ascontiguousarray(psi)
        if self.select == "nonharmonic":
            residuals = local_linear_residuals(psi[:, 1:])
            self.residuals_ = np.concatenate([[0.0], residuals])
            self.selected_ = np.sort(np.argsort(-residuals, kind="stable")[: self.n_components]) + 1
        else:
            self.residuals_ = None
            self.selected_ = np.arange(1, self.n_components + 1)
        return self

    @staticmethod
    def _precisions(covariances, shape) -> np.ndarray:
        C = np.asarray(covariances, dtype=float)
        if C.shape != (shape[0], shape[1], shape[1]):
            raise InputError(f"covariances must have shape ({shape[0]}, {shape[1]}, {shape[1]}), got {C.shape}")
        if not np.isfinite(C).all():
            raise InputError("covariances must be finite")
        return np.linalg.pinv((C + C.transpose(0, 2, 1)) / 2, rcond=1e-10, hermitian=True)

    def _normalize(self, A, p_rows: np.ndarray, p_cols: np.ndarray):
        """Ā = P^{−α} A P^{−α} with row and column densities given."""
        if self.alpha == 0:
            return A
        if sparse.issparse(A):
            return sparse.diags(p_rows**-self.alpha) @ A @ sparse.diags(p_cols**-self.alpha)
        return A / (p_rows[:, None] ** self.alpha * p_cols[None, :] ** self.alpha)

    # -- using the fit -------------------------------------------------------------------------
    def _check_extensible(self) -> None:
        self.check_fitted()
        if self.precisions_ is not None:
            raise InputError(
                "a Mahalanobis fit has no Nyström extension without the new points' noise covariances; "
                "extend the coordinates with GeometricHarmonics or GaussianProcessRegression instead"
            )

    def nystrom(self, X_new) -> np.ndarray:
        """Nyström extension ψ_k(x) = λ_k⁻¹ Σ_j W(x, x_j) ψ_k(x_j) of every eigenvector, ``(M, n_eigenpairs + 1)``.

        W(x, ·) uses the same normalization as the fit, with x's own density Σ_j A(x, x_j).
        At a training point it returns that point's coordinates.
        """
        self._check_extensible()
        X_new = as_samples(X_new, "X_new")
        if X_new.shape[1] != self.X_.shape[1]:
            raise InputError(f"X_new has {X_new.shape[1]} features, the fit had {self.X_.shape[1]}")
        A = self._kernel(self.X_, X_new)
        p_new = np.asarray(A.sum(axis=1)).ravel()
        if np.any(p_new == 0):
            far = np.flatnonzero(p_new == 0)[:10].tolist()
            raise InputError(f"points {far} are farther than the kernel reaches from all training data "
                             f"at epsilon = {self.epsilon_:.3g}")
        A_bar = self._normalize(A, p_new, self.density_)
        if sparse.issparse(A_bar):
            W = sparse.diags(1 / np.asarray(A_bar.sum(axis=1)).ravel()) @ A_bar
        else:
            W = A_bar / A_bar.sum(axis=1, keepdims=True)
        return np.asarray(W @ self.eigenvectors_) / self.eigenvalues_

    def transform(self, X_new) -> np.ndarray:
        """The selected diffusion coordinates of new points, ``(M, n_components)``."""
        return self.nystrom(X_new)[:, self.selected_]

    def nystrom_torch(self, x: torch.Tensor) -> torch.Tensor:
        """The selected coordinates by the Nyström formula in torch (dense over the training set),
        differentiable by autograd: ``(M, dim)`` → ``(M, n_components)``."""
        self._check_extensible()
        as_tensor = lambda a: torch.as_tensor(a, dtype=x.dtype, device=x.device)
        kernel = torch.exp(-torch.cdist(x, as_tensor(self.X_)).square() / (2 * self.epsilon_))
        p_new = kernel.sum(dim=1, keepdim=True)
        kernel = kernel / (p_new**self.alpha * as_tensor(self.density_) ** self.alpha)
        W = kernel / kernel.sum(dim=1, keepdim=True)
        return W @ as_tensor(self.eigenvectors_[:, self.selected_] / self.eigenvalues_[self.selected_])

    def gradient(self, X_new) -> np.ndarray:
        """∇ of the selected coordinates' Nyström extension by autograd, ``(M, n_components, dim)``."""
        x = torch.as_tensor(as_samples(X_new, "X_new"), dtype=torch.float64)
        return torch.func.vmap(torch.func.jacrev(lambda p: self.nystrom_torch(p[None])[0]))(x).numpy()

    def fit_transform(self, X, covariances=None, *, seed: SeedLike) -> np.ndarray:
        """:meth:`fit`, then the selected coordinates of the training points, ``(N, n_components)``."""
        return self.fit(X, covariances, seed=seed).eigenvectors_[:, self.selected_]

    def get_state(self) -> dict:
        return {k: v for k, v in super().get_state().items() if k != "tree_"}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.tree_ = cKDTree(self.X_) if self.sparse_ else None

    # -- as a Restrict operator: states (..., n_features) -> (..., n_components) ------------------
    @property
    def names(self) -> list[str]:
        self.check_fitted()
        return [f"phi{k}" for k in self.selected_]

    def __call__(self, x):
        """φ of states ``(..., dim)``; torch tensors go through :meth:`nystrom_torch` (differentiable)."""
        if torch.is_tensor(x):
            return self.nystrom_torch(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], len(self.selected_))
        x = np.asarray(x, dtype=float)
        return self.transform(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], len(self.selected_))


def local_linear_residuals(psi: np.ndarray, *, n_neighbors: int = 64, bandwidth_scale: float = 1 / 3) -> np.ndarray:
    """Residual r_k of regressing ψ_k on ψ_1..ψ_{k−1} by local linear regression (Dsilva et al. 2018).

    A harmonic ψ_k is a function of the earlier eigenvectors (small r_k); a new direction is not
    (r_k near 1). r_1 = 1 by definition. Weights exp(−‖Ψ_i − Ψ_j‖² / h²) over the nearest
    neighbours in (ψ_1..ψ_{k−1}), with h = ``bandwidth_scale`` × the median pairwise neighbour distance;
    the point itself is left out.
    """
    n, m = psi.shape
    residuals = np.ones(m)
    k_nn = min(n_neighbors, n - 1)
    for k in range(1, m):
        features = psi[:, :k]
        distances, neighbours = cKDTree(features).query(features, k=k_nn + 1)
        distances, neighbours = distances[:, 1:], neighbours[:, 1:]
        h = bandwidth_scale * np.median(distances)
        weights = np.exp(-(distances / h) ** 2) + 1e-300
        design = np.concatenate([np.ones((n, k_nn, 1)), features[neighbours] - features[:, None, :]], axis=2)
        weighted = design * weights[..., None]
        normal = np.einsum("nja,njb->nab", weighted, design) + 1e-12 * np.eye(k + 1)
        rhs = np.einsum("nja,nj->na", weighted, psi[neighbours, k])
        prediction = np.linalg.solve(normal, rhs[..., None])[:, 0, 0]
        residuals[k] = np.sqrt(np.sum((psi[:, k] - prediction) ** 2) / np.sum(psi[:, k] ** 2))
    return residuals

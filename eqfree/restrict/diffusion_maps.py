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

Distances are computed from coordinate differences (``scipy.spatial.distance.cdist``, ``cKDTree``), never
as ‖x‖² + ‖y‖² − 2x·y, so they do not lose precision far from the origin: the fit is invariant under
translations and rotations of the data to rounding.

Eigenvectors are scaled so that Σ_i π_i ψ_k(x_i)² = 1 with π = D/ΣD, W's stationary law (the
trivial ψ_0 is then ≡ 1). Duplicate
points are kept: each counts as a sample (with α = 1 the density normalization discounts them).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg, sparse
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.sparse.linalg import LinearOperator, eigsh
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist, pdist, squareform
from threadpoolctl import threadpool_limits

from ..base import Estimator
from ..errors import InputError
from ..seeding import SeedLike, as_seed_sequence

#: the sparse kernel drops values below this by default: cut-off radius √(2ε ln(1/KERNEL_TOLERANCE))
KERNEL_TOLERANCE = 1e-12
#: log-grid density of the bandwidth search (points per decade of ε)
GRID_PER_DECADE = 20
#: pairs of points whose distances are computed at once when the sparse kernel is built
PAIR_CHUNK = 1 << 20


def as_samples(X, name: str = "X") -> np.ndarray:
    """``X`` as a finite float ``(n_samples, n_features)`` array (a 1-D array is one feature)."""
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
    """ε in the regime where the kernel sum grows as ε^{d/2}, d the intrinsic dimension (:func:`plateau_bandwidth`),
    computed on at most ``n_samples`` points drawn with ``seed``."""
    rng = np.random.default_rng(as_seed_sequence(seed))
    sample = X if len(X) <= n_samples else X[rng.choice(len(X), n_samples, replace=False)]
    return plateau_bandwidth(pdist(sample, "sqeuclidean"), len(sample))


def intrinsic_dimension(squared: np.ndarray, n_points: int, n_neighbors: int = 10) -> float:
    """Maximum-likelihood intrinsic dimension from nearest-neighbour distances (Levina & Bickel 2005, with the
    MacKay & Ghahramani average of inverses): d̂⁻¹ = mean_i (1/(k−1)) Σ_{j<k} log(T_k(x_i)/T_j(x_i)).
    ``squared`` holds the condensed squared distances of ``n_points`` points (``pdist`` order); coincident
    points are skipped."""
    k = min(n_neighbors, n_points - 1)
    if k < 2:
        return 1.0
    full = squareform(squared)
    np.fill_diagonal(full, np.inf)
    near = np.sqrt(np.sort(np.partition(full, k - 1, axis=1)[:, :k], axis=1))
    near = near[near[:, 0] > 0]
    if len(near) == 0:
        return 1.0
    return float(1 / np.mean(np.log(near[:, -1:] / near[:, :-1]).mean(axis=1)))


def kernel_sum_slope(squared: np.ndarray, n_zero: int, epsilons: np.ndarray) -> np.ndarray:
    """s(ε) = d log S / d log ε of S(ε) = Σ_ij exp(−d_ij²/(2ε)), exactly: the kernel-weighted mean of d_ij²/(2ε).
    ``squared`` holds each pair i < j at a positive distance once; ``n_zero`` counts the terms at distance 0
    (i = j, and coincident points both ways)."""
    slopes = np.empty(len(epsilons))
    for m, eps in enumerate(epsilons):
        scaled = squared / (2 * eps)
        weights = np.exp(-scaled)
        slopes[m] = 2 * np.dot(weights, scaled) / (n_zero + 2 * weights.sum())
    return slopes


def plateau_bandwidth(squared: np.ndarray, n_points: int, *, intrinsic_regime: bool = True) -> float:
    """ε from the kernel-sum slope criterion restricted to the regime of the intrinsic dimension.

    The slope s(ε) = d log S/d log ε of S(ε) = Σ_ij exp(−d_ij²/(2ε)) rises from 0 (only i = j counts) to
    about d/2 where the kernel sees the d-dimensional manifold (Coifman, Shkolnisky, Sigworth & Singer 2008;
    Berry & Harlim 2016), and exceeds d/2 once it reaches across folds or curvature, before falling to 0
    when every pair counts. Its global maximum (the criterion of Berry & Harlim) therefore lies across the
    folds of a folded manifold. Here d is the maximum-likelihood dimension of :func:`intrinsic_dimension`,
    rounded; the intrinsic regime is the longest run of a fine log grid (``GRID_PER_DECADE``) on which
    0.75·d/2 ≤ s(ε) ≤ 1.05·d/2 (the lower bound allows for the boundary and sampling deficit of s, the upper
    one flags the ambient dimension). Leakage across folds perturbs the leading eigenvectors long before
    it shows in S, so ε is taken a quarter of the way (in log ε) into that run. Without such a run (noisy
    or sparse data) the global maximum of s is used. ε is at least ℓ²/4, ℓ the longest edge of the points'
    minimum spanning tree, so that the kernel links every point to the rest with weight ≥ e⁻² (clumped data,
    e.g. trajectories, otherwise give a disconnected graph). ``squared`` holds the squared distance of each
    pair i < j once (``pdist`` order) of ``n_points`` points. With ``intrinsic_regime=False`` the global
    maximum of s is returned (Berry & Harlim), as for the Mahalanobis kernel, whose distances already
    discount the fast directions.
    """
    positive = squared[squared > 0]
    if positive.size == 0:
        raise InputError("all points coincide: no bandwidth separates them")
    # below the 0.1 % quantile of the distances (about the nearest-neighbour scale) s is ~0
    low, high = np.log10(np.quantile(positive, 1e-3)), np.log10(positive.max()) + 1
    epsilons = np.logspace(low, high, int(np.ceil((high - low) * GRID_PER_DECADE)) + 1)
    slopes = kernel_sum_slope(positive, n_points + 2 * (squared.size - positive.size), epsilons)
    half = max(1, round(intrinsic_dimension(squared, n_points))) / 2
    inside = np.concatenate([[0], ((slopes >= 0.75 * half) & (slopes <= 1.05 * half)).astype(int), [0]])
    starts, ends = np.flatnonzero(np.diff(inside) == 1), np.flatnonzero(np.diff(inside) == -1)
    if starts.size == 0 or not intrinsic_regime:
        chosen = epsilons[np.argmax(slopes)]
    else:
        longest = np.argmax(ends - starts)
        chosen = epsilons[starts[longest] + (ends[longest] - 1 - starts[longest]) // 4]
    return float(max(chosen, minimum_spanning_tree(squareform(squared)).max() / 4))


def squared_distances(Y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """‖y_i − x_j‖² of all pairs, ``(len(Y), len(X))``, from the coordinate differences."""
    return cdist(Y, X, "sqeuclidean")


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


def scale_in_place(matrix: sparse.csr_matrix, scale: np.ndarray) -> None:
    """``matrix`` ← diag(scale) · matrix · diag(scale), in place on its stored values."""
    matrix.data *= scale[matrix.indices]
    matrix.data *= np.repeat(scale, np.diff(matrix.indptr))


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
    select : ``"nonharmonic"`` (:func:`nonharmonic_loadings`: harmonics skipped by local linear regression, Dsilva
        et al. 2018, and new directions taken as the smoothest in the eigenvectors' span) or ``"leading"``.
    tolerance : relative residual ‖S v − λ v‖ at which the sparse eigensolver (``eigsh``) stops; eigenvalues are
        then exact to about tolerance²/gap and eigenvectors to tolerance/gap (gap: the distance to the next
        eigenvalue). The dense solver is exact.

    Attributes
    ----------
    epsilon_ : the bandwidth used.
    eigenvalues_ : ``(n_eigenpairs + 1,)`` descending, the first is 1.
    eigenvectors_ : ``(N, n_eigenpairs + 1)`` right eigenvectors of W, the first constant.
    loadings_ : ``(n_eigenpairs + 1, n_components)``: the coordinates returned by :meth:`transform` are
        φ = Ψ L (:func:`nonharmonic_loadings`; with ``select="leading"`` the columns of ψ_1..ψ_n_components).
    residuals_ : local-linear-regression residual of each coordinate on the ones before it (φ_1: 1).
    selected_ : for each coordinate, the eigenvector with the largest loading (φ_1 = ψ_1 exactly).
    X_, density_ : the training data and its kernel density p_i = Σ_j A_ij (for the Nyström extension).
    """

    def __init__(self, *, n_components: int = 1, epsilon: float | str = "auto", alpha: float = 1.0,
                 n_eigenpairs: int | None = None, kernel: str = "auto", cut_off: float | None = None,
                 select: str = "nonharmonic", tolerance: float = 1e-10):
        self.n_components = n_components
        self.epsilon = epsilon
        self.alpha = alpha
        self.n_eigenpairs = n_eigenpairs
        self.kernel = kernel
        self.cut_off = cut_off
        self.select = select
        self.tolerance = tolerance

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
        if not (isinstance(self.tolerance, (int, float)) and 0 <= self.tolerance < 1):
            raise InputError(f"tolerance must lie in [0, 1), got {self.tolerance!r}")
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

    def _kernel(self, X: np.ndarray, Y: np.ndarray):
        """A(Y, X) (B.1): dense array, or sparse with pairs beyond the cut-off radius dropped."""
        if not self.sparse_:
            return np.exp(-squared_distances(Y, X) / (2 * self.epsilon_))
        radius = self.cut_off or np.sqrt(2 * self.epsilon_ * np.log(1 / KERNEL_TOLERANCE))
        distances = cKDTree(Y).sparse_distance_matrix(self.tree_, radius, output_type="coo_matrix")
        values = np.exp(-(distances.data**2) / (2 * self.epsilon_))
        return sparse.csr_matrix((values, (distances.row, distances.col)), shape=(len(Y), len(X)))

    def _training_kernel(self, X: np.ndarray) -> sparse.csr_matrix:
        """The strictly upper triangle of A(X, X): the pairs within the cut-off radius (``cKDTree.query_pairs``,
        each pair once), CSR; the diagonal is 1."""
        radius = self.cut_off or np.sqrt(2 * self.epsilon_ * np.log(1 / KERNEL_TOLERANCE))
        pairs = self.tree_.query_pairs(radius, output_type="ndarray").astype(np.int32)
        values = np.empty(len(pairs))
        for start in range(0, len(pairs), PAIR_CHUNK):
            i, j = pairs[start : start + PAIR_CHUNK].T
            values[start : start + PAIR_CHUNK] = np.exp(-np.sum((X[i] - X[j]) ** 2, axis=1) / (2 * self.epsilon_))
        n = len(X)
        upper = sparse.coo_matrix((values, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        del pairs, values
        return upper.tocsr()

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
        elif self.epsilon == "auto":
            sample = np.random.default_rng(as_seed_sequence(seed)).choice(n, min(n, 1000), replace=False)
            squared = mahalanobis_squared_distances(X[sample], self.precisions_[sample])
            self.epsilon_ = plateau_bandwidth(squareform(squared, checks=False), len(sample), intrinsic_regime=False)
        else:
            self.epsilon_ = float(self.epsilon)
        if self.sparse_:
            p, d, values, vectors = self._sparse_eigenpairs(X, n_eigenpairs, seed)
        else:
            p, d, values, vectors = self._dense_eigenpairs(X, n_eigenpairs)
        scale = 1 / np.sqrt(d)
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
            self.loadings_, self.residuals_ = nonharmonic_loadings(psi, self.eigenvalues_, d, self.n_components,
                                                                   seed=seed)
        else:
            self.loadings_ = np.eye(n_eigenpairs + 1)[:, 1 : self.n_components + 1]
            self.residuals_ = None
        self.selected_ = np.argmax(np.abs(self.loadings_), axis=0)
        return self

    def _check_connected(self, graph) -> None:
        n_parts, labels = connected_components(graph, directed=False)
        if n_parts > 1:
            raise InputError(
                f"the kernel graph at epsilon = {self.epsilon_:.3g} falls apart into {n_parts} disconnected "
                f"pieces (sizes {np.bincount(labels)[:5].tolist()}...); choose a larger epsilon, e.g. "
                f"{4 * self.epsilon_:.3g}, or check the data for separate clusters"
            )

    def _dense_eigenpairs(self, X: np.ndarray, n_eigenpairs: int):
        """p, d and the top eigenpairs of S = D^{−1/2} Ā D^{−1/2} by a dense eigensolver (normalised in place;
        ``eigh`` reads the lower triangle)."""
        if self.precisions_ is None:
            A = self._kernel(X, X)
        else:
            A = np.exp(-mahalanobis_squared_distances(X, self.precisions_) / (2 * self.epsilon_))
        self._check_connected(sparse.csr_matrix(A > KERNEL_TOLERANCE))
        p = A.sum(axis=1)
        q = p**-self.alpha  # Ā = P^{−α} A P^{−α}
        A *= q[:, None]
        A *= q[None, :]
        d = A.sum(axis=1)
        scale = 1 / np.sqrt(d)
        A *= scale[:, None]
        A *= scale[None, :]
        n = len(X)
        # one BLAS thread: on a busy machine OpenBLAS threads spin and the solve took ~3x longer (measured)
        with threadpool_limits(1, user_api="blas"):
            values, vectors = linalg.eigh(A, subset_by_index=(n - n_eigenpairs - 1, n - 1), overwrite_a=True)
        return p, d, values, vectors

    def _sparse_eigenpairs(self, X: np.ndarray, n_eigenpairs: int, seed: SeedLike):
        """p, d and the top eigenpairs of S = D^{−1/2} Ā D^{−1/2} by Lanczos (``eigsh``).

        S is held as its strictly upper triangle U and its diagonal, S v = U v + Uᵀ v + diag·v: half the memory
        of the full matrix, exactly symmetric, normalised in place (no dense or full-size intermediates)."""
        upper = self._training_kernel(X)
        self._check_connected(upper)
        row_sums = lambda diagonal: diagonal + np.asarray(upper.sum(axis=1)).ravel() + np.asarray(
            upper.sum(axis=0)).ravel()
        p = row_sums(np.ones(len(X)))
        scale_in_place(upper, p**-self.alpha)  # Ā = P^{−α} A P^{−α}
        diagonal = p ** (-2 * self.alpha)
        d = row_sums(diagonal)
        scale_in_place(upper, 1 / np.sqrt(d))
        diagonal = diagonal / d
        lower = upper.T  # a CSC view: no copy
        S = LinearOperator(upper.shape, matvec=lambda v: upper @ v + lower @ v + diagonal * v, dtype=float)
        # a seeded random start: reproducible, and not the exact trivial eigenvector √d, which would make ARPACK
        # restart from its own (unseeded) random vector. One BLAS thread: ARPACK's small dense updates gain
        # nothing from more, and OpenBLAS threads spinning on a busy machine made them ~15x slower (measured).
        v0 = np.random.default_rng(as_seed_sequence(seed)).standard_normal(len(X))
        with threadpool_limits(1, user_api="blas"):
            values, vectors = eigsh(S, k=n_eigenpairs + 1, which="LA", v0=v0, tol=self.tolerance)
        return p, d, values, vectors

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
        return self.nystrom(X_new) @ self.loadings_

    def nystrom_torch(self, x: torch.Tensor) -> torch.Tensor:
        """The selected coordinates by the Nyström formula in torch (dense over the training set),
        differentiable by autograd: ``(M, dim)`` → ``(M, n_components)``."""
        self._check_extensible()
        as_tensor = lambda a: torch.as_tensor(a, dtype=x.dtype, device=x.device)
        distances = torch.cdist(x, as_tensor(self.X_), compute_mode="donot_use_mm_for_euclid_dist")
        kernel = torch.exp(-distances.square() / (2 * self.epsilon_))
        p_new = kernel.sum(dim=1, keepdim=True)
        kernel = kernel / (p_new**self.alpha * as_tensor(self.density_) ** self.alpha)
        W = kernel / kernel.sum(dim=1, keepdim=True)
        return W @ as_tensor(self.eigenvectors_ @ (self.loadings_ / self.eigenvalues_[:, None]))

    def gradient(self, X_new) -> np.ndarray:
        """∇ of the selected coordinates' Nyström extension by autograd, ``(M, n_components, dim)``."""
        x = torch.as_tensor(as_samples(X_new, "X_new"), dtype=torch.float64)
        return torch.func.vmap(torch.func.jacrev(lambda p: self.nystrom_torch(p[None])[0]))(x).numpy()

    def fit_transform(self, X, covariances=None, *, seed: SeedLike) -> np.ndarray:
        """:meth:`fit`, then the selected coordinates of the training points, ``(N, n_components)``."""
        return self.fit(X, covariances, seed=seed).eigenvectors_ @ self.loadings_

    def get_state(self) -> dict:
        """The fitted state without the KD-tree (rebuilt from ``X_`` on :meth:`set_state`)."""
        return {k: v for k, v in super().get_state().items() if k != "tree_"}

    def set_state(self, state: dict) -> None:
        """Restore the fitted state and rebuild the KD-tree of a sparse kernel."""
        super().set_state(state)
        self.tree_ = cKDTree(self.X_) if self.sparse_ else None

    # -- as a Restrict operator: states (..., n_features) -> (..., n_components) ------------------
    @property
    def names(self) -> list[str]:
        """``phi1``, ``phi2``, ... for the coordinates φ_c."""
        self.check_fitted()
        return [f"phi{c + 1}" for c in range(self.n_components)]

    def __call__(self, x):
        """φ of states ``(..., dim)``; torch tensors go through :meth:`nystrom_torch` (differentiable)."""
        if torch.is_tensor(x):
            return self.nystrom_torch(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], self.n_components)
        x = np.asarray(x, dtype=float)
        return self.transform(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], self.n_components)


def local_linear_fit(features: np.ndarray, targets: np.ndarray, *, bandwidth_scale: float = 1 / 3) -> np.ndarray:
    """Leave-one-out local linear regression of each column of ``targets`` ``(n, m)`` on ``features`` ``(n, k)``
    (Dsilva, Talmon, Coifman & Kevrekidis 2018): at each point i, y ≈ a_i + b_iᵀ(f_j − f_i) is fitted by least
    squares with weights exp(−‖f_i − f_j‖² / h²) over the other points j, h = ``bandwidth_scale`` × the median
    of all pairwise feature distances (one third, as published); returns the a_i, ``(n, m)``. O(n²) memory."""
    n, k = features.shape
    h = bandwidth_scale * np.median(pdist(features))
    weights = np.exp(-cdist(features, features, "sqeuclidean") / h**2)
    np.fill_diagonal(weights, 0.0)
    # weighted moments of z_j = (1, f_j) and z_j y_j for every i at once, then shifted to (1, f_j − f_i)
    z = np.concatenate([np.ones((n, 1)), features], axis=1)
    moments = (weights @ (z[:, :, None] * z[:, None, :]).reshape(n, -1)).reshape(n, k + 1, k + 1)
    rhs = (weights @ (z[:, :, None] * targets[:, None, :]).reshape(n, -1)).reshape(n, k + 1, -1)
    shift = np.broadcast_to(np.eye(k + 1), (n, k + 1, k + 1)).copy()
    shift[:, 1:, 0] = -features
    normal = shift @ moments @ shift.transpose(0, 2, 1) + 1e-12 * np.eye(k + 1)
    return np.linalg.solve(normal, shift @ rhs)[:, 0, :]


def nonharmonic_loadings(psi: np.ndarray, eigenvalues: np.ndarray, stationary: np.ndarray, n_components: int, *,
                         n_samples: int = 3000, seed: SeedLike = 0) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates φ_c = Ψ L_c that parametrize the data without harmonics: the loadings L
    ``(n_eigenpairs + 1, n_components)`` and the residual of each coordinate.

    ``psi`` holds W's right eigenvectors ψ_0 ≡ 1, ψ_1, ..., ψ_m, π-orthonormal, ``eigenvalues`` their λ_k
    (descending), ``stationary`` π up to a factor. φ_1 = ψ_1. Each next φ_c is the smoothest function in the
    span of ψ_1..ψ_m that φ_1..φ_{c−1} do not explain: with R = Ψ − LLR(Ψ | φ_1..φ_{c−1}) the leave-one-out
    local-linear residuals (:func:`local_linear_fit`, the regression of Dsilva et al. 2018), L_c maximizes
    the unexplained variance per unit of Dirichlet energy, ‖R L‖²_π / Σ_k L_k² (1 − λ_k) — a symmetric
    generalized eigenproblem. A harmonic of the earlier coordinates has no unexplained part and is skipped;
    of the new directions the smoothest is taken. Eigenvectors closer in eigenvalue than the sampling noise
    resolves mix: on a swiss roll of 2000 points the height mixes with the roll's fourth harmonic and with its
    own product with ψ_1, so that choosing among the eigenvectors themselves by their sequential residuals
    (Dsilva et al.) misses it for some samples; the rotation within their span recovers it. The residual of
    φ_c is ‖R L_c‖_π / ‖Ψ L_c‖_π (φ_1: 1). The regressions run on at most ``n_samples`` points drawn with
    ``seed`` (O(n_samples²) each). The criterion separates a new direction from the next new one (e.g. the
    height from its product with ψ_1) by their Dirichlet energies only, so sampling noise in Q matters: on a
    strip of 3000 points, regressions on 2000 of them rotated the second coordinate by up to 0.45 rad
    (correlation with cos πy 0.91–0.99 over three subsamples; 0.97 on all points).
    """
    n, m = psi.shape[0], psi.shape[1] - 1
    loadings = np.zeros((m + 1, n_components))
    loadings[1, 0] = 1.0
    residuals = np.ones(n_components)
    rows = np.arange(n)
    if n > n_samples:
        rows = np.sort(np.random.default_rng(as_seed_sequence(seed)).choice(n, n_samples, replace=False))
    V, weights = psi[rows, 1:], stationary[rows] / stationary[rows].sum()
    gram = V.T @ (weights[:, None] * V)
    dirichlet = np.diag(1 - eigenvalues[1:])
    for c in range(1, n_components):
        unexplained = V - local_linear_fit(V @ loadings[1:, :c], V)
        Q = unexplained.T @ (weights[:, None] * unexplained)
        direction = linalg.eigh(Q, dirichlet)[1][:, -1]
        direction /= np.linalg.norm(direction)
        residuals[c] = np.sqrt(direction @ Q @ direction / (direction @ gram @ direction))
        loadings[1:, c] = direction
    coordinates = psi @ loadings
    loadings *= np.sign(coordinates[np.argmax(np.abs(coordinates), axis=0), np.arange(n_components)])
    return loadings, residuals

/*-------------------------------------------------------------------------
 *
 * kernel.h
 *	  mf_ext's own single-precision ALS kernels: a row's Gram matrix and
 *	  right-hand side summed straight from the other side's factors through
 *	  the row's column indices (no gathered copy), a small Cholesky solve
 *	  (one system at a time, or a batch of 16 or 8 in the vectors' lanes),
 *	  the fused conjugate-gradient product and G v.  One version per instruction
 *	  set (AVX-512, AVX2 with FMA, portable C), chosen at run time from the
 *	  CPU's features or forced by mf_ext.kernel; 'blas' keeps OpenBLAS's
 *	  ssyrk/spotrf path (and double precision always uses it).
 *
 *	  The rated rows o_e = other + cols[e] * k (k floats each), extended by
 *	  a trailing 1 when the row has a bias of its own (d = k + 1 unknowns).
 *	  Matrices are column-major d x d with leading dimension ld, element
 *	  (i, j) at a[j * ld + i]; the kernels read and mean their lower triangle
 *	  (i >= j) and may write anything into the upper.  Everything here is
 *	  plain C: it runs in worker threads and never calls PostgreSQL.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_KERNEL_H
#define MF_KERNEL_H

#include "mf_ext.h"

typedef struct MfKernel
{
	const char *name;			/* mf_ext.kernel's value for it */

	/*
	 * a += sum_e w_e o_e o_e' over n rows (w_e = 1 when weights is NULL):
	 * the lower triangle of a, d x d (k + 1 with bias: a's last row gets
	 * sum w_e o_e and sum w_e).  With targets, in the same pass over the
	 * rows, rhs += sum_e t_e o_e (d numbers; with bias rhs[k] += sum t_e).
	 * cols[n .. n + n_next) may be read, not summed: the rows of the
	 * caller's next call, asked of the cache ahead (0 where none follow).
	 */
	void		(*gram) (const float *other, int k, const int32 *cols, int n,
						 const float *weights, const float *targets, bool bias,
						 float *a, int ld, float *rhs, int n_next);

	/*
	 * out += sum_e w_e (o_e . v) o_e: the data part of A v for conjugate
	 * gradient, in one pass over the rows (d numbers in v and out).  With
	 * targets, out += sum_e (t_e - w_e (o_e . v)) o_e instead: the data part
	 * of the residual b - A v, the right-hand side in the same pass.  With
	 * dots (n numbers), dots[e] = o_e . v as well (with bias, + v[k]),
	 * before w_e: conjugate gradient follows each row's predictions with
	 * them, and J needs no pass of its own.
	 */
	void		(*apply) (const float *other, int k, const int32 *cols, int n,
						  const float *weights, const float *targets, bool bias,
						  const float *v, float *out, float *dots);

	/*
	 * out[j n + e] = o_e[j] for the n rows o_e = other + cols[e] k, j < k:
	 * X' (k x n, leading dimension n), the dual form's input (an exact
	 * copy).
	 */
	void		(*gather_transposed) (const float *other, int k, const int32 *cols, int n,
									  float *out);

	/* scores[e] = o_e . x (d numbers in x): a row's predictions. */
	void		(*scores) (const float *other, int k, const int32 *cols, int n,
						   bool bias, const float *x, float *scores);

	/*
	 * out[0 .. k) += sum_e s_e o_e over n rows (s_e = 1 when scales is
	 * NULL): implicit information's sum of the implicit factors of a row's
	 * entries, and the Woodbury solve's combination of its rows.
	 */
	void		(*row_sum) (const float *other, int k, const int32 *cols, int n,
							const float *scales, float *out);
	/*
	 * out += scale A v, A a full d x d matrix (both triangles; leading
	 * dimension ld), v and out d numbers: the fixed side's Gram matrix G
	 * times a row's vector in implicit feedback's (and implicit
	 * information's) conjugate gradient and J, where OpenBLAS's sgemv on
	 * a 64 x 64 matrix took a third of an implicit CG iteration.
	 */
	void		(*matrix_apply) (const float *a, int d, int ld, const float *v, float scale,
								 float *out);

	/*
	 * Vector work on a row's d unknowns, bit for bit as als_kernel.h's own
	 * loops do it, in vector registers (NULL in the portable kernel, whose
	 * rows take those loops).  dot returns x . y (CG's norms and
	 * curvatures, each row's penalty and J's unobserved pairs); cg_step
	 * sets x += step p and r -= step q (each product formed in double and
	 * rounded once to float) and returns r . r.  Both sum the products in
	 * double as four interleaved partial sums (element j into sum j mod 4),
	 * added as (s0 + s1) + (s2 + s3).  cg_direction sets p = r + beta p in
	 * floats, multiply and add rounded apart.  These loops, one element at
	 * a time, took a quarter of an implicit CG iteration on Last.fm at
	 * k = 64, whose rows are short.
	 */
	double		(*dot) (const float *x, const float *y, int d);
	double		(*cg_step) (float *x, float *r, const float *p, const float *q, double step,
							int d);
	void		(*cg_direction) (float *p, const float *r, float beta, int d);

	/*
	 * Cholesky factorisation A = L L' of a's lower triangle, d x d, blocked
	 * by the vector's width: a keeps L below its diagonal blocks and the
	 * inverse of each diagonal block of L in that block, for
	 * cholesky_solve.  False (a half-written) when A is not numerically
	 * positive definite.
	 */
	bool		(*cholesky) (float *a, int d, int ld);

	/* x = A^-1 x (d numbers) from what cholesky left in a. */
	void		(*cholesky_solve) (const float *a, int d, int ld, float *x);

	/*
	 * The most unknowns for which cholesky + cholesky_solve beat LAPACK's
	 * spotrf + spotrs (test/bench/kernels.c, one thread, 2026-11-30: the
	 * AVX-512 ones at every size up to 1,025, 0.29-0.57x; AVX2 0.28-0.77x
	 * up to 512, 1.21x at 1,024; portable C 0.55-0.91x up to 24, 1.06x at
	 * 32); callers leave larger systems to LAPACK.
	 */
	int			cholesky_max;

	/*
	 * Solves n <= batch_lanes systems at once, one in each lane of the
	 * vectors (NULL, with batch_lanes 0, for the portable kernel): a[s]
	 * holds system s as cholesky reads it (d x d, lower triangle, leading
	 * dimension ld, left as it was), x[s] its right-hand side, replaced by
	 * the solution.  Returns the systems that are not numerically positive
	 * definite as bits (1 << s; their x is garbage).  Needs
	 * cholesky_batch_scratch(d) floats of scratch, aligned as
	 * mf_alloc_aligned aligns.  A system's solution does not depend on the
	 * others in its batch.  For d <= MF_KERNEL_BATCH_MAX (the scratch grows
	 * with V d^2 / 2; larger systems take cholesky).
	 */
	unsigned	(*cholesky_batch) (float *const *a, int n, int d, int ld, float *const *x,
								   float *scratch);

	/*
	 * One system (a, d, ld and x as one of cholesky_batch's, a's lower
	 * triangle overwritten) solved with the operations a lane of
	 * cholesky_batch does, in the same order, so that its solution is
	 * the batch's bit for bit, in 1.5-2.1x the time of cholesky +
	 * cholesky_solve where a batch of one costs a whole batch's work: for
	 * rows solved one at a time (a Citus worker's) and short batches.
	 * False when A is not numerically positive definite.
	 */
	bool		(*cholesky_one) (float *a, int d, int ld, float *x, float *scratch);
	size_t		(*cholesky_batch_scratch) (int d);
	int			batch_lanes;
} MfKernel;

/*
 * The most unknowns cholesky_batch solves (k = 128 with biases): at
 * k = 128 it took 0.65-0.75x cholesky's time with AVX-512, 0.75-0.9x with
 * AVX2 (test/bench/kernels.c, one thread, 2026-12-01).
 */
#define MF_KERNEL_BATCH_MAX 129

/* The most systems any kernel's cholesky_batch solves at once (batch_lanes). */
#define MF_KERNEL_MAX_LANES 16

/*
 * A row's solution x (k floats) in the dual form: for its n rated rows
 * o_e = other[cols[e]] (the n x k matrix X) and ratings y (n floats),
 * x = X'z with (X X' + penalty I) z = y, which is
 * (X'X + penalty I)^-1 X'y (the push-through identity): an n x n system
 * where the primal one is k x k, cheaper for n well below k (als.c's
 * dual_degree).  With bias, X has a column of ones whose penalty is
 * penalty * bias_penalty_ratio (the bias's penalty over the factors'; 0
 * to infinity), and x (k + 1 floats) takes the bias last: the system
 * scaled by its penalties, (X X' + w 1 1' + penalty I) z = y with
 * w = 1 / bias_penalty_ratio, x = X'z and w sum z, the ones' term solved
 * by Sherman-Morrison (any ratio; as an element of the system a large w
 * swamped it).  identity holds 0 .. k - 1, transposed
 * has room for k x n floats and gram for n x n; y is overwritten (scaled
 * by a power of two first where it nears the float range).
 * n <= the kernel's cholesky_max.  False when the system is not
 * numerically positive definite.  Plain C over kernel's functions: for
 * worker threads.
 */
extern bool mf_kernel_dual_solve(const MfKernel *kernel, const float *other, int k,
								 const int32 *cols, int n, float penalty, bool bias,
								 double bias_penalty_ratio, float *y, const int32 *identity,
								 float *transposed, float *gram, float *x);

/*
 * out[i] = sum_j u[j] codes[i * stride + j] for the n rows of codes: one
 * side's factors quantised to 8-bit integers for pre-scoring (MfCodes,
 * score.h) against a query row's codes widened to 16 bits, both zero from
 * k to stride (a multiple of MF_CODE_ALIGN).  Exact in int32 (|sum| <=
 * k 127^2 for k <= MF_MAX_K), so every version gives the same sums.
 */
typedef void (*MfCodeDots) (const int16 *u, const int8 *codes, int stride, int32 n,
							int32 *out);
#define MF_CODE_ALIGN 32

/* mf_ext.kernel's values. */
typedef enum MfKernelChoice
{
	MF_KERNEL_AUTO,
	MF_KERNEL_AVX512,
	MF_KERNEL_AVX2,
	MF_KERNEL_PORTABLE,
	MF_KERNEL_BLAS
} MfKernelChoice;

extern int	mf_kernel_choice;	/* mf_ext.kernel */

/* Defines mf_ext.kernel (from _PG_init). */
extern void mf_kernel_define_setting(void);

/*
 * The kernels mf_ext.kernel selects (auto: the widest the CPU runs), or
 * NULL for 'blas'.  Backend thread only.
 */
extern const MfKernel *mf_kernel(void);

/*
 * The MfCodeDots of the instruction set mf_ext.kernel selects (for 'blas'
 * and 'auto' the widest the CPU runs).  Backend thread only.
 */
extern MfCodeDots mf_code_dots(void);

#endif							/* MF_KERNEL_H */

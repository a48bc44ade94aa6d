/*-------------------------------------------------------------------------
 *
 * kernel_simd.h
 *	  The kernels of kernel.h, written once over a vector of V floats.
 *	  kernel.c includes this file once per instruction set, with
 *
 *		SIMD(name)		name##_avx512, name##_avx2 or name##_portable
 *		SIMD_FN			the function attributes of that instruction set
 *		V, VEC			lanes, vector type
 *		VZERO() VLOAD(p) VLOADN(p, n) VSTORE(p, x) VSTOREN(p, x, n)
 *		VBCAST(s) VFMA(a, b, c) = a b + c, VFNMA(a, b, c) = c - a b,
 *		VMUL(a, b) VADD(a, b) VSUM(x)
 *						(VLOADN/VSTOREN touch the first n lanes only, n
 *						 may be <= 0 or > V; VLOADN's other lanes are 0)
 *		TILE_VECTORS, TILE_COLUMNS
 *						the Gram tile held in registers: TILE_VECTORS
 *						vectors of rows by TILE_COLUMNS columns
 *		CHOLESKY_VECTORS	the part of a column the Cholesky factorisation
 *						holds in registers, in vectors (4 or 8)
 *		CHOLESKY_REGISTERS	the vector registers its sums may take
 *
 *	  The Gram kernel keeps a tile of sum_e w_e o_e o_e' in registers while
 *	  it streams the rated rows through their column indices (no gathered
 *	  copy), over blocks of rows small enough to stay in the L1 cache, and
 *	  writes the lower triangle (column-major; the upper is mirrored by the
 *	  caller where something reads it).  The Cholesky factorisation is the
 *	  left-looking column form: each column of L is built in registers from
 *	  axpys of the columns before it.  The parameters are #undef'd at the
 *	  end.
 *
 *-------------------------------------------------------------------------
 */

/* Rows of the other side per block of the Gram kernel: about 32 KB of them. */
#define SIMD_BLOCK_FLOATS	8192

/* Rows per partial sum of the right-hand side. */
#define SIMD_SUM_BLOCK	256

/* Loops over a tile's vectors unroll whole, so that its sums stay in registers. */
#define SIMD_UNROLL _Pragma("GCC unroll 8")

/*
 * One tile of the Gram matrix: rows row0 .. row0 + vectors * V - 1 (those
 * below k) by columns col0 .. col0 + TILE_COLUMNS - 1 (those below k), of
 * sum_e w_e o_e o_e' over n rows, added to a.  vectors, masked (some of
 * the tile's rows are past k) and weighted are constants in each call, so
 * the tile's loops unroll, its sums stay in registers and its branches go.
 */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(gram_tile) (const float *other, int k, const int32 *cols, int n,
				 const float *weights, float *a, int ld, int row0, int col0,
				 const int vectors, const bool masked, const bool weighted)
{
	VEC			sum[TILE_VECTORS][TILE_COLUMNS];
	int			lanes[TILE_VECTORS];
	int			column[TILE_COLUMNS];

	SIMD_UNROLL
	for (int v = 0; v < vectors; v++)
	{
		lanes[v] = k - (row0 + v * V);
		SIMD_UNROLL
		for (int c = 0; c < TILE_COLUMNS; c++)
			sum[v][c] = VZERO();
	}
	/* a tile past the last column repeats it, and drops it when stored */
	SIMD_UNROLL
	for (int c = 0; c < TILE_COLUMNS; c++)
		column[c] = Min(col0 + c, k - 1);

	for (int e = 0; e < n; e++)
	{
		const float *o = other + (Size) cols[e] * k;
		VEC			rows[TILE_VECTORS];

		SIMD_UNROLL
		for (int v = 0; v < vectors; v++)
		{
			rows[v] = masked ? VLOADN(o + row0 + v * V, lanes[v]) : VLOAD(o + row0 + v * V);
			if (weighted)
				rows[v] = VMUL(rows[v], VBCAST(weights[e]));
		}
		SIMD_UNROLL
		for (int c = 0; c < TILE_COLUMNS; c++)
		{
			VEC			b = VBCAST(o[column[c]]);

			SIMD_UNROLL
			for (int v = 0; v < vectors; v++)
				sum[v][c] = VFMA(rows[v], b, sum[v][c]);
		}
	}

	SIMD_UNROLL
	for (int c = 0; c < TILE_COLUMNS; c++)
	{
		if (col0 + c >= k)
			break;
		SIMD_UNROLL
		for (int v = 0; v < vectors; v++)
		{
			float	   *to = a + (Size) (col0 + c) * ld + row0 + v * V;

			if (lanes[v] >= V)
				VSTORE(to, VADD(VLOAD(to), sum[v][c]));
			else if (lanes[v] > 0)
				VSTOREN(to, VADD(VLOADN(to, lanes[v]), sum[v][c]), lanes[v]);
		}
	}
}

/* gram_tile with its shape's constants spelled out, per number of vectors. */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(gram_tile_shaped) (const float *other, int k, const int32 *cols, int n,
						const float *weights, float *a, int ld, int row0, int col0,
						const int vectors)
{
	bool		masked = row0 + vectors * V > k;

	if (masked && weights)
		SIMD(gram_tile) (other, k, cols, n, weights, a, ld, row0, col0, vectors, true, true);
	else if (masked)
		SIMD(gram_tile) (other, k, cols, n, weights, a, ld, row0, col0, vectors, true, false);
	else if (weights)
		SIMD(gram_tile) (other, k, cols, n, weights, a, ld, row0, col0, vectors, false, true);
	else
		SIMD(gram_tile) (other, k, cols, n, weights, a, ld, row0, col0, vectors, false, false);
}

/*
 * out[0 .. k) += sum_e s_e o_e (s_e = 1 when scales is NULL); returns
 * sum_e s_e.  Eight vectors of out at a time are summed in registers over
 * blocks of SIMD_SUM_BLOCK rows: a long row's sum is a sum of its blocks'
 * sums, so its rounding error grows with the number of blocks, not rows.
 */
static SIMD_FN double
SIMD(scaled_sum) (const float *other, int k, const int32 *cols, int n,
				  const float *scales, float *out)
{
	double		total = 0.0;

	for (int start = 0; start < n; start += SIMD_SUM_BLOCK)
	{
		int			end = Min(n, start + SIMD_SUM_BLOCK);

		for (int first = 0; first < k; first += 8 * V)
		{
			VEC			sum[8];
			int			vectors = Min(8, (k - first + V - 1) / V);

			SIMD_UNROLL
			for (int v = 0; v < 8; v++)
				sum[v] = VZERO();
			for (int e = start; e < end; e++)
			{
				const float *o = other + (Size) cols[e] * k + first;
				VEC			s = VBCAST(scales ? scales[e] : 1.0f);

				for (int v = 0; v < vectors; v++)
				{
					int			lanes = k - (first + v * V);

					sum[v] = VFMA(lanes >= V ? VLOAD(o + v * V) : VLOADN(o + v * V, lanes),
								  s, sum[v]);
				}
			}
			for (int v = 0; v < vectors; v++)
			{
				float	   *to = out + first + v * V;
				int			lanes = k - (first + v * V);

				VSTOREN(to, VADD(VLOADN(to, lanes), sum[v]), lanes);
			}
		}
	}
	for (int e = 0; e < n; e++)
		total += scales ? scales[e] : 1.0;
	return total;
}

/* MfKernel.gram, into the lower triangle of a. */
static SIMD_FN void
SIMD(gram) (const float *other, int k, const int32 *cols, int n,
			const float *weights, bool bias, float *a, int ld)
{
	/* blocks of at most SIMD_BLOCK_FLOATS floats of rows, of even sizes */
	int			most = Max(16, SIMD_BLOCK_FLOATS / Max(k, 1));
	int			blocks = (n + most - 1) / most;
	int			block = blocks > 0 ? (n + blocks - 1) / blocks : 1;

	for (int first = 0; first < n; first += block)
	{
		int			count = Min(block, n - first);

		for (int col0 = 0; col0 < k; col0 += TILE_COLUMNS)
		{
			/* the lower triangle's rows of these columns, from a vector's start */
			for (int row0 = col0 - col0 % V; row0 < k; row0 += TILE_VECTORS * V)
			{
				int			vectors = Min(TILE_VECTORS, (k - row0 + V - 1) / V);

#define SIMD_TILE(n_vectors) \
	SIMD(gram_tile_shaped) (other, k, cols + first, count, weights ? weights + first : NULL, \
							a, ld, row0, col0, n_vectors)
				switch (vectors)
				{
					case 1:
						SIMD_TILE(1);
						break;
					case 2:
						SIMD_TILE(2);
						break;
#if TILE_VECTORS >= 3
					case 3:
						SIMD_TILE(3);
						break;
#endif
#if TILE_VECTORS >= 4
					case 4:
						SIMD_TILE(4);
						break;
#endif
				}
#undef SIMD_TILE
			}
		}
	}
	if (bias)
	{
		/* row k: sum w_e o_e, one element per column; then sum w_e */
		float		column[MF_MAX_K];

		memset(column, 0, sizeof(float) * k);
		a[(Size) k * ld + k] += (float) SIMD(scaled_sum) (other, k, cols, n, weights, column);
		for (int j = 0; j < k; j++)
			a[(Size) j * ld + k] += column[j];
	}
}

/* MfKernel.rhs */
static SIMD_FN void
SIMD(rhs) (const float *other, int k, const int32 *cols, int n,
		   const float *targets, bool bias, float *rhs)
{
	double		total = SIMD(scaled_sum) (other, k, cols, n, targets, rhs);

	if (bias)
		rhs[k] += (float) total;
}

/* MfKernel.scores, two chains of FMAs per row. */
static SIMD_FN void
SIMD(scores) (const float *other, int k, const int32 *cols, int n, bool bias,
			  const float *x, float *scores)
{
	for (int e = 0; e < n; e++)
	{
		const float *o = other + (Size) cols[e] * k;
		VEC			even = VZERO();
		VEC			odd = VZERO();
		int			j;

		for (j = 0; j + V < k; j += 2 * V)
		{
			even = VFMA(VLOAD(o + j), VLOAD(x + j), even);
			odd = VFMA(VLOADN(o + j + V, k - j - V), VLOADN(x + j + V, k - j - V), odd);
		}
		if (j < k)
			even = VFMA(VLOADN(o + j, k - j), VLOADN(x + j, k - j), even);
		scores[e] = VSUM(VADD(even, odd)) + (bias ? x[k] : 0);
	}
}

/*
 * MfKernel.apply for k of at most 8 vectors (a constant in each call): v
 * and the sums held in registers, each row loaded once for its dot product
 * (two chains) and its update; the sums go to out every SIMD_SUM_BLOCK
 * rows, so that a long row's rounding grows with its blocks, not rows.
 */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(apply_held) (const float *other, int k, const int32 *cols, int n,
				  const float *weights, const float *targets, bool bias, const float *v,
				  float *out, const int vectors)
{
	VEC			held[8];
	int			tail = k - (vectors - 1) * V;	/* lanes of the last vector */
	double		bias_sum = 0;

	SIMD_UNROLL
	for (int i = 0; i < vectors; i++)
		held[i] = i < vectors - 1 ? VLOAD(v + i * V) : VLOADN(v + i * V, tail);
	for (int start = 0; start < n; start += SIMD_SUM_BLOCK)
	{
		VEC			sum[8];
		float		block_bias = 0;

		SIMD_UNROLL
		for (int i = 0; i < vectors; i++)
			sum[i] = VZERO();
		for (int e = start; e < Min(n, start + SIMD_SUM_BLOCK); e++)
		{
			const float *o = other + (Size) cols[e] * k;
			VEC			rows[8];
			VEC			even = VZERO();
			VEC			odd = VZERO();
			float		score;
			VEC			s;

			SIMD_UNROLL
			for (int i = 0; i < vectors; i++)
			{
				rows[i] = i < vectors - 1 ? VLOAD(o + i * V) : VLOADN(o + i * V, tail);
				if (i % 2 == 0)
					even = VFMA(rows[i], held[i], even);
				else
					odd = VFMA(rows[i], held[i], odd);
			}
			score = VSUM(VADD(even, odd)) + (bias ? v[k] : 0);
			if (weights)
				score *= weights[e];
			if (targets)
				score = targets[e] - score;
			s = VBCAST(score);
			SIMD_UNROLL
			for (int i = 0; i < vectors; i++)
				sum[i] = VFMA(rows[i], s, sum[i]);
			block_bias += score;
		}
		SIMD_UNROLL
		for (int i = 0; i < vectors; i++)
		{
			if (i < vectors - 1)
				VSTORE(out + i * V, VADD(VLOAD(out + i * V), sum[i]));
			else
				VSTOREN(out + i * V, VADD(VLOADN(out + i * V, tail), sum[i]), tail);
		}
		bias_sum += block_bias;
	}
	if (bias)
		out[k] += (float) bias_sum;
}

/* MfKernel.apply */
static SIMD_FN void
SIMD(apply) (const float *other, int k, const int32 *cols, int n,
			 const float *weights, const float *targets, bool bias, const float *v,
			 float *out)
{
	double		bias_sum = 0;
	float		block[MF_MAX_K];

	switch ((k + V - 1) / V)
	{
#define SIMD_APPLY(n_vectors) \
		case n_vectors: \
			SIMD(apply_held) (other, k, cols, n, weights, targets, bias, v, out, n_vectors); \
			return
			SIMD_APPLY(1);
			SIMD_APPLY(2);
			SIMD_APPLY(3);
			SIMD_APPLY(4);
			SIMD_APPLY(5);
			SIMD_APPLY(6);
			SIMD_APPLY(7);
			SIMD_APPLY(8);
#undef SIMD_APPLY
	}

	/* longer rows: v and a block's sums (in block) stay in memory */
	for (int start = 0; start < n; start += SIMD_SUM_BLOCK)
	{
		memset(block, 0, sizeof(float) * k);
		for (int e = start; e < Min(n, start + SIMD_SUM_BLOCK); e++)
		{
			const float *o = other + (Size) cols[e] * k;
			float		score;
			VEC			s;

			SIMD(scores) (other, k, cols + e, 1, bias, v, &score);
			if (weights)
				score *= weights[e];
			if (targets)
				score = targets[e] - score;
			s = VBCAST(score);
			for (int j = 0; j < k; j += V)
				VSTOREN(block + j, VFMA(VLOADN(o + j, k - j), s, VLOADN(block + j, k - j)), k - j);
			bias_sum += score;
		}
		for (int j = 0; j < k; j += V)
			VSTOREN(out + j, VADD(VLOADN(out + j, k - j), VLOADN(block + j, k - j)), k - j);
	}
	if (bias)
		out[k] += (float) bias_sum;
}

/*
 * Rows first .. first + vectors * V - 1 (those below d) of column j of a,
 * less sum_p<j L[j][p] L[rows, p]: one step of the left-looking Cholesky,
 * in registers, in up to four independent chains of FMAs (as many as the
 * registers hold).  vectors is a constant in each call.
 */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(cholesky_update) (float *a, int d, int ld, int j, int first, const int vectors)
{
	const int	chains = vectors * 4 <= CHOLESKY_REGISTERS ? 4
		: vectors * 2 <= CHOLESKY_REGISTERS ? 2 : 1;
	float	   *column = a + (Size) j * ld + first;
	int			lanes = d - first;
	VEC			sum[4][CHOLESKY_VECTORS];
	int			p;

	SIMD_UNROLL
	for (int c = 0; c < chains; c++)
		SIMD_UNROLL
		for (int v = 0; v < vectors; v++)
			sum[c][v] = c == 0 ? VLOADN(column + v * V, lanes - v * V) : VZERO();
	for (p = 0; p + chains <= j; p += chains)
	{
		SIMD_UNROLL
		for (int c = 0; c < chains; c++)
		{
			const float *earlier = a + (Size) (p + c) * ld;
			VEC			l = VBCAST(earlier[j]);

			SIMD_UNROLL
			for (int v = 0; v < vectors; v++)
				sum[c][v] = VFNMA(VLOADN(earlier + first + v * V, lanes - v * V), l, sum[c][v]);
		}
	}
	for (; p < j; p++)
	{
		const float *earlier = a + (Size) p * ld;
		VEC			l = VBCAST(earlier[j]);

		SIMD_UNROLL
		for (int v = 0; v < vectors; v++)
			sum[0][v] = VFNMA(VLOADN(earlier + first + v * V, lanes - v * V), l, sum[0][v]);
	}
	SIMD_UNROLL
	for (int v = 0; v < vectors; v++)
	{
		SIMD_UNROLL
		for (int c = 1; c < chains; c++)
			sum[0][v] = VADD(sum[0][v], sum[c][v]);
		VSTOREN(column + v * V, sum[0][v], lanes - v * V);
	}
}

/* MfKernel.cholesky: A = L L' in a's lower triangle, column by column. */
static SIMD_FN bool
SIMD(cholesky) (float *a, int d, int ld)
{
	for (int j = 0; j < d; j++)
	{
		float	   *column = a + (Size) j * ld;
		float		pivot;
		VEC			scale;

		/* rows j .. d - 1, CHOLESKY_VECTORS vectors at a time */
		for (int first = j; first < d; first += CHOLESKY_VECTORS * V)
		{
			switch (Min(CHOLESKY_VECTORS, (d - first + V - 1) / V))
			{
#define SIMD_UPDATE(n) case n: SIMD(cholesky_update) (a, d, ld, j, first, n); break
					SIMD_UPDATE(1);
					SIMD_UPDATE(2);
					SIMD_UPDATE(3);
					SIMD_UPDATE(4);
#if CHOLESKY_VECTORS == 8
					SIMD_UPDATE(5);
					SIMD_UPDATE(6);
					SIMD_UPDATE(7);
					SIMD_UPDATE(8);
#endif
#undef SIMD_UPDATE
			}
		}
		pivot = column[j];
		if (!(pivot > 0) || isinf(pivot))
			return false;
		column[j] = sqrtf(pivot);
		scale = VBCAST(1.0f / column[j]);
		for (int i = j + 1; i < d; i += V)
			VSTOREN(column + i, VMUL(VLOADN(column + i, d - i), scale), d - i);
	}
	return true;
}

/* MfKernel.cholesky_solve: L y = x, then L' x = y. */
static SIMD_FN void
SIMD(cholesky_solve) (const float *a, int d, int ld, float *x)
{
	for (int j = 0; j < d; j++)
	{
		const float *column = a + (Size) j * ld;
		VEC			y;

		x[j] /= column[j];
		y = VBCAST(x[j]);
		for (int i = j + 1; i < d; i += V)
			VSTOREN(x + i, VFNMA(VLOADN(column + i, d - i), y, VLOADN(x + i, d - i)), d - i);
	}
	for (int j = d - 1; j >= 0; j--)
	{
		const float *column = a + (Size) j * ld;
		VEC			dot = VZERO();

		for (int i = j + 1; i < d; i += V)
			dot = VFMA(VLOADN(column + i, d - i), VLOADN(x + i, d - i), dot);
		x[j] = (x[j] - VSUM(dot)) / column[j];
	}
}

#undef SIMD_BLOCK_FLOATS
#undef SIMD_UNROLL
#undef SIMD_SUM_BLOCK
#undef SIMD
#undef SIMD_FN
#undef V
#undef VEC
#undef VZERO
#undef VLOAD
#undef VLOADN
#undef VSTORE
#undef VSTOREN
#undef VBCAST
#undef VFMA
#undef VFNMA
#undef VMUL
#undef VADD
#undef VSUM
#undef TILE_VECTORS
#undef TILE_COLUMNS
#undef CHOLESKY_VECTORS
#undef CHOLESKY_REGISTERS

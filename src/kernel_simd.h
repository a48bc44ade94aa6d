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
 *		VMUL(a, b) VADD(a, b) VSUB(a, b) VDIV(a, b) VSQRT(x) VSUM(x)
 *		VSUMALL(x)		VSUM(x) in every lane, bit for bit
 *		VFIRST(x)		lane 0 of x, a float
 *		VLANE(x, i)		lane i of x in every lane
 *		VLOADRANGE(p, from, n)	lanes from .. n - 1 of p, the others 0
 *						(VLOADN/VSTOREN touch the first n lanes only, n
 *						 may be <= 0 or > V; VLOADN's other lanes are 0;
 *						 with n >= V they load and store unmasked)
 *		TILE_VECTORS, TILE_COLUMNS
 *						the Cholesky factorisation's tile held in
 *						registers: TILE_VECTORS vectors of rows by
 *						TILE_COLUMNS columns
 *		GRAM_COLUMNS(vectors)
 *						the Gram tile's columns when it has that many
 *						vectors of rows (at most TILE_VECTORS): as many as
 *						the registers hold, and enough independent sums
 *						to keep the FMA units busy
 *		GRAM_GROUP		the Gram matrix's columns taken together: V, or
 *						for a vector of one float TILE_COLUMNS
 *
 *	  and, for the vector versions (V > 1; the batched Cholesky, the Gram
 *	  kernel's diagonal blocks),
 *
 *		VTRANSPOSE(r)	r[0 .. V) transposed in registers
 *		VROTATE(x, s)	x rotated by s lanes: lane i holds lane (i + s) mod V
 *		GRAM_DIAGONAL_BLOCKS
 *						the Gram kernel's diagonal blocks taken together
 *						(1 or 2)
 *		VPOSITIVE(x)	the lanes of x positive and finite, as bits
 *		VKEEP(x, bits, other)	x in the lanes of bits, other elsewhere
 *		BATCH_TILE		the batched factorisation's tile: BATCH_TILE x
 *						BATCH_TILE vectors of sums
 *
 *	  The Gram kernel keeps a tile of sum_e w_e o_e o_e' in registers while
 *	  it streams the rated rows through their column indices (no gathered
 *	  copy), over blocks of rows small enough to stay in the L1 cache (and
 *	  of at most SIMD_SUM_BLOCK rows), asking the L2 cache for the next
 *	  block's rows while it reads one (GramAhead), and writes the lower
 *	  triangle (column-major; the upper is mirrored by the caller where
 *	  something reads it).  Its columns go in groups of
 *	  GRAM_GROUP, each group's tiles starting at the vector holding the
 *	  group's first diagonal element, so that only the diagonal blocks
 *	  compute elements of the upper triangle; the vector versions, up to
 *	  k = SIMD_ROTATED_K and for unweighted rows, sum the diagonal V x V
 *	  blocks in rotated form instead (gram_diagonal: V / 2 + 1 products a
 *	  row where a tile takes V) with the right-hand side, and the tiles
 *	  start below them.  The Cholesky factorisation is blocked by vectors
 *	  (see cholesky below).  The parameters are #undef'd at the end.
 *
 *-------------------------------------------------------------------------
 */

/* Rows of the other side per block of the Gram kernel: about 32 KB of them. */
#define SIMD_BLOCK_FLOATS	8192

/*
 * Rows per partial sum, of the right-hand side and of each Gram tile: a
 * long row's rounding grows with its number of blocks (a pair rated
 * thousands of times left a system indefinite when 1,024 rows were summed
 * at once).
 */
#define SIMD_SUM_BLOCK	256

/*
 * The Gram kernel's diagonal blocks are summed in rotated form
 * (gram_diagonal) for k up to SIMD_ROTATED_K: their sums, kept on the
 * stack, take 9 KB there; past it the diagonal blocks are a small share.
 */
#define SIMD_ROTATED_K		256

/* Rows ahead whose factors are prefetched. */
#define SIMD_PREFETCH_ROWS	16

/* Loops over a tile's vectors unroll whole, so that its sums stay in registers. */
#define SIMD_UNROLL _Pragma("GCC unroll 8")

/* So do loops over the columns of a Cholesky diagonal block (V of them). */
#define SIMD_UNROLL_BLOCK _Pragma("GCC unroll 16")

/* Columns of a Cholesky update's tile: at most a block's. */
#define SIMD_CHOLESKY_COLUMNS (TILE_COLUMNS < V ? TILE_COLUMNS : V)

/*
 * One tile of the Gram matrix: rows row0 .. row0 + vectors * V - 1 (those
 * below k) by columns col0 .. col0 + columns - 1 (those below k), of
 * sum_e w_e o_e o_e' over n rows, added to a.  vectors, columns, edge
 * (some of the tile's rows or columns are past k) and weighted are
 * constants in each call, so the tile's loops unroll, its sums stay in
 * registers and its branches go.  Inside k, each row's columns are
 * broadcast at fixed offsets from one pointer: the compiler, left to
 * itself, keeps an offset per column, and so many do not fit in the
 * registers beside the sums (reloading them cost 7-14% of the AVX-512
 * kernel at k = 32 to 128).  Telling masked rows from clamped columns,
 * two more variants of each tile, made the whole kernel slower.
 */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(gram_tile) (const float *other, int k, const int32 *cols, int n,
				 const float *weights, float *a, int ld, int row0, int col0,
				 const int vectors, const int columns, const bool edge, const bool weighted,
				 GramAhead *ahead)
{
	VEC			sum[TILE_VECTORS][GRAM_COLUMNS_MOST];
	int			lanes[TILE_VECTORS];
	int			column[GRAM_COLUMNS_MOST];
	int			ahead_row = ahead->row;
	int			ahead_line = ahead->line;

	SIMD_UNROLL
	for (int v = 0; v < vectors; v++)
	{
		lanes[v] = k - (row0 + v * V);
		SIMD_UNROLL_BLOCK
		for (int c = 0; c < columns; c++)
			sum[v][c] = VZERO();
	}
	/* a tile past the last column repeats it, and drops it when stored */
	SIMD_UNROLL_BLOCK
	for (int c = 0; c < columns; c++)
		column[c] = Min(col0 + c, k - 1);

	for (int e = 0; e < n; e++)
	{
		const float *o = other + (Size) cols[e] * k;
		const float *tile_columns = o + col0;
		VEC			rows[TILE_VECTORS];

		if (!edge)
			__asm__("" : "+r"(tile_columns));	/* a pointer the loop computes */
		gram_ahead_step(other, k, ahead, &ahead_row, &ahead_line);
		SIMD_UNROLL
		for (int v = 0; v < vectors; v++)
		{
			rows[v] = edge ? VLOADN(o + row0 + v * V, lanes[v]) : VLOAD(o + row0 + v * V);
			if (weighted)
				rows[v] = VMUL(rows[v], VBCAST(weights[e]));
		}
		SIMD_UNROLL_BLOCK
		for (int c = 0; c < columns; c++)
		{
			VEC			b = VBCAST(edge ? o[column[c]] : tile_columns[c]);

			SIMD_UNROLL
			for (int v = 0; v < vectors; v++)
				sum[v][c] = VFMA(rows[v], b, sum[v][c]);
		}
	}

	SIMD_UNROLL_BLOCK
	for (int c = 0; c < columns; c++)
	{
		if (col0 + c >= k)
			break;
		SIMD_UNROLL
		for (int v = 0; v < vectors; v++)
		{
			float	   *to = a + (Size) (col0 + c) * ld + row0 + v * V;

			VSTOREN(to, VADD(VLOADN(to, lanes[v]), sum[v][c]), lanes[v]);
		}
	}
	ahead->row = ahead_row;
	ahead->line = ahead_line;
}

/* gram_tile with its shape's constants spelled out. */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(gram_tile_shaped) (const float *other, int k, const int32 *cols, int n,
						const float *weights, float *a, int ld, int row0, int col0,
						const int vectors, const int columns, GramAhead *ahead)
{
	bool		edge = row0 + vectors * V > k || col0 + columns > k;

	if (edge && weights)
		SIMD(gram_tile) (other, k, cols, n, weights, a, ld, row0, col0, vectors, columns,
						 true, true, ahead);
	else if (edge)
		SIMD(gram_tile) (other, k, cols, n, weights, a, ld, row0, col0, vectors, columns,
						 true, false, ahead);
	else if (weights)
		SIMD(gram_tile) (other, k, cols, n, weights, a, ld, row0, col0, vectors, columns,
						 false, true, ahead);
	else
		SIMD(gram_tile) (other, k, cols, n, weights, a, ld, row0, col0, vectors, columns,
						 false, false, ahead);
}

/*
 * The tiles of rows row0 .. row0 + vectors * V - 1 (those below k) by the
 * columns of the group from g0: GRAM_COLUMNS(vectors) at a time, the
 * group's last tile narrower where GRAM_GROUP is not a multiple of that.
 * vectors is a constant in each call.
 */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(gram_group) (const float *other, int k, const int32 *cols, int n,
				  const float *weights, float *a, int ld, int row0, int g0,
				  const int vectors, GramAhead *ahead)
{
	const int	width = GRAM_COLUMNS(vectors);
	int			col0;

	/*
	 * the last group of one vector of rows with at most half a tile of
	 * columns left (the dual form's 17 to 24 ratings at k = 64 and its
	 * like; k = 20, 40 or 100): a tile of half the width, the same sums
	 */
	if (vectors == 1 && g0 + width / 2 >= k)
	{
		SIMD(gram_tile_shaped) (other, k, cols, n, weights, a, ld, row0, g0, 1, width / 2,
								ahead);
		return;
	}
	for (col0 = g0; col0 + width <= g0 + GRAM_GROUP && col0 < k; col0 += width)
		SIMD(gram_tile_shaped) (other, k, cols, n, weights, a, ld, row0, col0, vectors, width,
								ahead);
	if (GRAM_GROUP % width != 0 && col0 < k)
		SIMD(gram_tile_shaped) (other, k, cols, n, weights, a, ld, row0, col0, vectors,
								GRAM_GROUP % width, ahead);
}

#ifdef VROTATE
/*
 * The diagonal blocks of the Gram matrix in rotated form: block b (rows
 * and columns b V .. b V + V - 1) of sum_e o_e o_e', for blocks b0 ..
 * b0 + blocks - 1, over n rows, added to rotated[b][s][0 .. V).  With x a
 * row's V elements of the block, sum s (s = 0 .. V / 2) takes x times x
 * rotated by s lanes, so that its lane r holds the element
 * (b V + r, b V + (r + s) mod V): V / 2 + 1 products cover the block's
 * V (V + 1) / 2 elements, where a tile of V columns takes V products, near
 * half of them spent on the upper triangle.  gram_unrotate puts the sums
 * in place.  With targets, the same rows' sum_e t_e x is added to the
 * block's elements of rhs, as block_sum would; the pass from block 0 asks
 * the cache for each row SIMD_PREFETCH_ROWS rows ahead, being the first to
 * read them.  blocks, edge (the last block passes k) and summed (targets
 * given) are constants in each call.  Unweighted only (see SIMD(gram)).
 */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(gram_diagonal) (const float *other, int k, const int32 *cols, int n,
					 const float *targets, float *rotated, float *rhs,
					 int b0, const int blocks, const bool edge, const bool summed,
					 GramAhead *ahead)
{
	VEC			sum[GRAM_DIAGONAL_BLOCKS][V / 2 + 1];
	VEC			right[GRAM_DIAGONAL_BLOCKS];
	int			ahead_row = ahead->row;
	int			ahead_line = ahead->line;

	SIMD_UNROLL
	for (int b = 0; b < blocks; b++)
	{
		right[b] = VZERO();
		SIMD_UNROLL_BLOCK
		for (int s = 0; s <= V / 2; s++)
			sum[b][s] = VZERO();
	}
	for (int e = 0; e < n; e++)
	{
		const float *o = other + (Size) cols[e] * k + b0 * V;

		if (b0 == 0 && e + SIMD_PREFETCH_ROWS < n)
			prefetch_row(other + (Size) cols[e + SIMD_PREFETCH_ROWS] * k, k);
		gram_ahead_step(other, k, ahead, &ahead_row, &ahead_line);
		SIMD_UNROLL
		for (int b = 0; b < blocks; b++)
		{
			VEC			x = edge ? VLOADN(o + b * V, k - (b0 + b) * V) : VLOAD(o + b * V);

			if (summed)
				right[b] = VFMA(x, VBCAST(targets[e]), right[b]);
			sum[b][0] = VFMA(x, x, sum[b][0]);
			SIMD_UNROLL_BLOCK
			for (int s = 1; s <= V / 2; s++)
				sum[b][s] = VFMA(x, VROTATE(x, s), sum[b][s]);
		}
	}
	SIMD_UNROLL
	for (int b = 0; b < blocks; b++)
	{
		float	   *to = rotated + (Size) (b0 + b) * (V / 2 + 1) * V;
		int			lanes = k - (b0 + b) * V;

		SIMD_UNROLL_BLOCK
		for (int s = 0; s <= V / 2; s++)
			VSTORE(to + s * V, VADD(VLOAD(to + s * V), sum[b][s]));
		if (summed)
			VSTOREN(rhs + (b0 + b) * V, VADD(VLOADN(rhs + (b0 + b) * V, lanes), right[b]), lanes);
	}
	ahead->row = ahead_row;
	ahead->line = ahead_line;
}

/* gram_diagonal with its shape's constants spelled out. */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(gram_diagonal_shaped) (const float *other, int k, const int32 *cols, int n,
							const float *targets, float *rotated, float *rhs, int b0,
							const int blocks, GramAhead *ahead)
{
	bool		edge = (b0 + blocks) * V > k;

#define SIMD_DIAGONAL(edge, summed) \
	SIMD(gram_diagonal) (other, k, cols, n, targets, rotated, rhs, b0, blocks, edge, summed, \
						 ahead)
	if (edge && targets)
		SIMD_DIAGONAL(true, true);
	else if (edge)
		SIMD_DIAGONAL(true, false);
	else if (targets)
		SIMD_DIAGONAL(false, true);
	else
		SIMD_DIAGONAL(false, false);
#undef SIMD_DIAGONAL
}

/*
 * Adds gram_diagonal's sums to the lower triangle of a.  Sum j (j <= V / 2)
 * is the block's wrapped diagonal j, lane r holding the element
 * (r, (r + j) mod V); rotating sum V - j by j lanes gives wrapped diagonal
 * j > V / 2, by symmetry.  Transposed, vector q's lane j is the element
 * ((q + j) mod V, q): its first V - q lanes are column q of the lower
 * triangle from the diagonal down.
 */
static SIMD_FN void
SIMD(gram_unrotate) (const float *rotated, int k, float *a, int ld)
{
	for (int base = 0; base < k; base += V)
	{
		const float *sums = rotated + (Size) (base / V) * (V / 2 + 1) * V;
		int			size = Min(V, k - base);
		VEC			column[V];

		SIMD_UNROLL_BLOCK
		for (int j = 0; j < V; j++)
			column[j] = j <= V / 2 ? VLOAD(sums + j * V) : VROTATE(VLOAD(sums + (V - j) * V), j);
		VTRANSPOSE(column);
		SIMD_UNROLL_BLOCK
		for (int q = 0; q < V; q++)
		{
			float	   *to = a + (Size) (base + q) * ld + base + q;

			if (q < size)
				VSTOREN(to, VADD(VLOADN(to, size - q), column[q]), size - q);
		}
	}
}
#endif

/*
 * scaled_sum's pass over rows start .. end - 1 for vectors vectors of out
 * from first, summed in registers; each row's factors are asked of the
 * cache SIMD_PREFETCH_ROWS rows ahead, since they come from anywhere in
 * the other side.  vectors is a constant in each call.
 */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(scaled_sum_pass) (const float *other, int k, const int32 *cols, int start, int end,
					   const float *scales, float *out, int first, const int vectors)
{
	VEC			sum[8];
	int			lanes[8];

	SIMD_UNROLL
	for (int v = 0; v < vectors; v++)
	{
		sum[v] = VZERO();
		lanes[v] = k - (first + v * V);
	}
	for (int e = start; e < end; e++)
	{
		const float *o = other + (Size) cols[e] * k + first;
		VEC			s = VBCAST(scales ? scales[e] : 1.0f);

		if (e + SIMD_PREFETCH_ROWS < end)
			prefetch_row(other + (Size) cols[e + SIMD_PREFETCH_ROWS] * k + first, vectors * V);
		SIMD_UNROLL
		for (int v = 0; v < vectors; v++)
			sum[v] = VFMA(VLOADN(o + v * V, lanes[v]),
						  s, sum[v]);
	}
	SIMD_UNROLL
	for (int v = 0; v < vectors; v++)
		VSTOREN(out + first + v * V, VADD(VLOADN(out + first + v * V, lanes[v]), sum[v]),
				lanes[v]);
}

/* out[0 .. k) += sum_e s_e o_e over rows start .. end - 1, in passes of eight vectors. */
static inline SIMD_FN void
SIMD(block_sum) (const float *other, int k, const int32 *cols, int start, int end,
				 const float *scales, float *out)
{
	for (int first = 0; first < k; first += 8 * V)
	{
		switch (Min(8, (k - first + V - 1) / V))
		{
#define SIMD_PASS(n_vectors) \
	case n_vectors: \
		SIMD(scaled_sum_pass) (other, k, cols, start, end, scales, out, first, n_vectors); \
		break
				SIMD_PASS(1);
				SIMD_PASS(2);
				SIMD_PASS(3);
				SIMD_PASS(4);
				SIMD_PASS(5);
				SIMD_PASS(6);
				SIMD_PASS(7);
				SIMD_PASS(8);
#undef SIMD_PASS
		}
	}
}

/* sum_e s_e (s_e = 1 when scales is NULL), in double precision. */
static inline SIMD_FN double
SIMD(scale_total) (const float *scales, int n)
{
	double		total = 0.0;

	for (int e = 0; e < n; e++)
		total += scales ? scales[e] : 1.0;
	return total;
}

/*
 * out[0 .. k) += sum_e s_e o_e (s_e = 1 when scales is NULL); returns
 * sum_e s_e.  The rows are summed in blocks of SIMD_SUM_BLOCK: a long
 * row's sum is a sum of its blocks' sums, so its rounding error grows with
 * the number of blocks, not rows.
 */
static SIMD_FN double
SIMD(scaled_sum) (const float *other, int k, const int32 *cols, int n,
				  const float *scales, float *out)
{
	for (int start = 0; start < n; start += SIMD_SUM_BLOCK)
		SIMD(block_sum) (other, k, cols, start, Min(n, start + SIMD_SUM_BLOCK), scales, out);
	return SIMD(scale_total) (scales, n);
}

/*
 * MfKernel.gram, into the lower triangle of a; with targets, the
 * right-hand side too, each block's sum taken as its rows come into the
 * cache, before the block's tiles read them again.  The passes over each
 * block ask the L2 cache for the next block's rows (GramAhead), the last
 * block for the first of the n_next rows that follow cols[n - 1].
 */
static SIMD_FN void
SIMD(gram) (const float *other, int k, const int32 *cols, int n,
			const float *weights, const float *targets, bool bias,
			float *a, int ld, float *rhs, int n_next)
{
	/*
	 * blocks of at most SIMD_BLOCK_FLOATS floats of rows and SIMD_SUM_BLOCK
	 * rows, of even sizes: each tile's sum over a block is added to a, so
	 * that a long row's rounding grows with its number of blocks, not rows
	 */
	int			most = Min(SIMD_SUM_BLOCK, Max(16, SIMD_BLOCK_FLOATS / Max(k, 1)));
	int			blocks = (n + most - 1) / most;
	int			block = blocks > 0 ? (n + blocks - 1) / blocks : 1;
#ifdef VROTATE
	/* the diagonal blocks' sums in rotated form (gram_diagonal) */
	float		rotated[SIMD_ROTATED_K / V * (V / 2 + 1) * V];

	/*
	 * Weighted rows (implicit feedback's corrections) keep the tiles: a
	 * rotated lane's product (w x_i) x_j would put the weight on i or on j
	 * by where the rotation wraps, which differs between vector widths, so
	 * AVX-512 and AVX2 would round an element differently; the tiles weight
	 * the row index always.  Unweighted, each product x_i x_j is the same
	 * float whichever lane holds it, and the widths give the same bits
	 * where the elements off the diagonal start at 0 (the penalty alone,
	 * as in every explicit solve but implicit information's): a block's
	 * rotated sums reach the matrix after the last block of rows, a tile's
	 * after each, so an element a tile holds at one width and the rotated
	 * form at the other is summed in another order onto any other start.
	 */
	const bool	rotate = k <= SIMD_ROTATED_K && weights == NULL;

	if (rotate)
		memset(rotated, 0, sizeof(float) * ((k + V - 1) / V) * (V / 2 + 1) * V);
#else
	const bool	rotate = false;
#endif

	for (int first = 0; first < n; first += block)
	{
		int			count = Min(block, n - first);
		GramAhead	ahead = {cols + first + count, Min(block, n + n_next - first - count), 0, 0};

#ifdef VROTATE
		if (rotate)
		{
			/* the diagonal blocks, GRAM_DIAGONAL_BLOCKS at a time, the right-hand side with them */
			const float *block_targets = targets ? targets + first : NULL;
			int			b;

			for (b = 0; GRAM_DIAGONAL_BLOCKS == 2 && (b + 1) * V < k; b += 2)
				SIMD(gram_diagonal_shaped) (other, k, cols + first, count, block_targets,
											rotated, rhs, b, 2, &ahead);
			for (; b * V < k; b++)
				SIMD(gram_diagonal_shaped) (other, k, cols + first, count, block_targets,
											rotated, rhs, b, 1, &ahead);
		}
		else
#endif
		if (targets)
			SIMD(block_sum) (other, k, cols, first, first + count, targets, rhs);

		for (int g0 = 0; g0 < k; g0 += GRAM_GROUP)
		{
			/*
			 * the lower triangle's rows of the group's columns, from a
			 * vector's start (past the diagonal block where it is rotated)
			 */
			for (int row0 = g0 - g0 % V + (rotate ? V : 0); row0 < k; row0 += TILE_VECTORS * V)
			{
				int			vectors = Min(TILE_VECTORS, (k - row0 + V - 1) / V);

#define SIMD_GROUP(n_vectors) \
	SIMD(gram_group) (other, k, cols + first, count, weights ? weights + first : NULL, \
					  a, ld, row0, g0, n_vectors, &ahead)
				switch (vectors)
				{
					case 1:
						SIMD_GROUP(1);
						break;
					case 2:
						SIMD_GROUP(2);
						break;
#if TILE_VECTORS >= 3
					case 3:
						SIMD_GROUP(3);
						break;
#endif
#if TILE_VECTORS >= 4
					case 4:
						SIMD_GROUP(4);
						break;
#endif
				}
#undef SIMD_GROUP
			}
		}
	}
#ifdef VROTATE
	if (rotate)
		SIMD(gram_unrotate) (rotated, k, a, ld);
#endif
	if (bias)
	{
		/* row k: sum w_e o_e, one element per column; then sum w_e */
		float		column[MF_MAX_K];

		memset(column, 0, sizeof(float) * k);
		a[(Size) k * ld + k] += (float) SIMD(scaled_sum) (other, k, cols, n, weights, column);
		for (int j = 0; j < k; j++)
			a[(Size) j * ld + k] += column[j];
		if (targets)
			rhs[k] += (float) SIMD(scale_total) (targets, n);
	}
}

/*
 * MfKernel.matrix_apply: out += scale A v, A full d x d (leading dimension
 * ld), by up to four vectors of rows at a time, each summed over the
 * columns in two chains (even and odd columns) and then added to out.
 */
static SIMD_FN void
SIMD(matrix_apply) (const float *a, int d, int ld, const float *v, float scale, float *out)
{
	for (int r0 = 0; r0 < d; r0 += 4 * V)
	{
		int			rows = d - r0;
		VEC			even[4];
		VEC			odd[4];
		int			j;

		SIMD_UNROLL
		for (int i = 0; i < 4; i++)
			even[i] = odd[i] = VZERO();
		for (j = 0; j + 1 < d; j += 2)
		{
			const float *column = a + (Size) j * ld + r0;
			VEC			first = VBCAST(v[j]);
			VEC			second = VBCAST(v[j + 1]);

			SIMD_UNROLL
			for (int i = 0; i < 4; i++)
			{
				even[i] = VFMA(VLOADN(column + i * V, rows - i * V), first, even[i]);
				odd[i] = VFMA(VLOADN(column + ld + i * V, rows - i * V), second, odd[i]);
			}
		}
		if (j < d)
		{
			const float *column = a + (Size) j * ld + r0;

			SIMD_UNROLL
			for (int i = 0; i < 4; i++)
				even[i] = VFMA(VLOADN(column + i * V, rows - i * V), VBCAST(v[j]), even[i]);
		}
		SIMD_UNROLL
		for (int i = 0; i < 4; i++)
			VSTOREN(out + r0 + i * V,
					VFMA(VADD(even[i], odd[i]), VBCAST(scale), VLOADN(out + r0 + i * V, rows - i * V)),
					rows - i * V);
	}
}

/* MfKernel.row_sum. */
static SIMD_FN void
SIMD(row_sum) (const float *other, int k, const int32 *cols, int n, const float *scales,
			   float *out)
{
	(void) SIMD(scaled_sum) (other, k, cols, n, scales, out);
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

		if (e + SIMD_PREFETCH_ROWS < n)
			prefetch_row(other + (Size) cols[e + SIMD_PREFETCH_ROWS] * k, k);
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
 * (two chains; to dots[e] if asked) and its update; the sums go to out
 * every SIMD_SUM_BLOCK rows, so that a long row's rounding grows with its
 * blocks, not rows.
 */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(apply_held) (const float *other, int k, const int32 *cols, int n,
				  const float *weights, const float *targets, bool bias, const float *v,
				  float *out, float *dots, const int vectors)
{
	VEC			held[8];
	int			tail = k - (vectors - 1) * V;	/* lanes of the last vector */
	VEC			bias_v = VBCAST(bias ? v[k] : 0);
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
			VEC			score;

			if (e + SIMD_PREFETCH_ROWS < n)
				prefetch_row(other + (Size) cols[e + SIMD_PREFETCH_ROWS] * k, vectors * V);
			SIMD_UNROLL
			for (int i = 0; i < vectors; i++)
			{
				rows[i] = i < vectors - 1 ? VLOAD(o + i * V) : VLOADN(o + i * V, tail);
				if (i % 2 == 0)
					even = VFMA(rows[i], held[i], even);
				else
					odd = VFMA(rows[i], held[i], odd);
			}
			/* in every lane: the row is multiplied without a broadcast */
			score = VADD(VSUMALL(VADD(even, odd)), bias_v);
			if (dots)
				dots[e] = VFIRST(score);
			if (weights)
				score = VMUL(score, VBCAST(weights[e]));
			if (targets)
				score = VSUB(VBCAST(targets[e]), score);
			SIMD_UNROLL
			for (int i = 0; i < vectors; i++)
				sum[i] = VFMA(rows[i], score, sum[i]);
			block_bias += VFIRST(score);
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
			 float *out, float *dots)
{
	double		bias_sum = 0;
	float		block[MF_MAX_K];

	switch ((k + V - 1) / V)
	{
#define SIMD_APPLY(n_vectors) \
		case n_vectors: \
			SIMD(apply_held) (other, k, cols, n, weights, targets, bias, v, out, dots, \
							  n_vectors); \
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
			if (dots)
				dots[e] = score;
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
 * The Cholesky factorisation is blocked in blocks of V columns (one
 * vector of rows each), right-looking.  For the block at jb (nb columns):
 *
 *	1. its diagonal block is factored in registers, L_bb L_bb' = A_bb,
 *	   from unscaled columns, so that each column's step waits on one
 *	   division and not on a square root;
 *	2. L_bb^-1 is formed row by row in registers, and the diagonal block
 *	   keeps it twice: rows of L_bb^-1 as the columns of its upper
 *	   triangle (lanes 0 .. c of column c), columns of L_bb^-1 in its
 *	   lower triangle, the diagonal (1 / L_cc) shared;
 *	3. the panel below, L_pb = A_pb L_bb^-T, is a product by it;
 *	4. the columns right of the block lose L_pb L_pb', in tiles of
 *	   TILE_VECTORS vectors by TILE_COLUMNS columns held in registers.
 *
 * What cholesky leaves for cholesky_solve is this: L below the diagonal
 * blocks, L_bb^-1 in them.  Every step but the pivots' is a product of
 * independent FMAs; the solves are too, apart from one horizontal sum per
 * column going back.  Tiles and the diagonal block also write the upper
 * triangle, which is scratch.
 */

/* A unit vector: lane q of VLOAD(SIMD(unit) + V - q) is 1, the others 0. */
static const float SIMD(unit)[2 * V] = {[V] = 1.0f};

/*
 * Steps 1 and 2 for the block at jb, nb = Min(V, d - jb) columns; false
 * when a pivot is not positive and finite.
 */
static inline SIMD_FN __attribute__((always_inline)) bool
SIMD(cholesky_diagonal_block) (float *a, int d, int ld, int jb, int nb)
{
	float	   *block = a + (Size) jb * ld + jb;
	VEC			column[V];
	VEC			inverse[V];

	/* 1: column c of the block less sum_p<c L_cp L_p, then scaled */
	SIMD_UNROLL_BLOCK
	for (int c = 0; c < V; c++)
		if (c < nb)
			column[c] = VLOADN(block + (Size) c * ld, nb);
		else
			column[c] = VZERO();
	SIMD_UNROLL_BLOCK
	for (int c = 0; c < V; c++)
	{
		VEC			pivot,
					reciprocal;

		if (c >= nb)
			break;
		pivot = VLANE(column[c], c);
		reciprocal = VDIV(VBCAST(1.0f), pivot);
		SIMD_UNROLL_BLOCK
		for (int q = c + 1; q < V; q++)
			if (q < nb)
				column[q] = VFNMA(VMUL(VLANE(column[c], q), reciprocal), column[c], column[q]);
		/* a pivot <= 0, NaN or infinite leaves NaN or infinity on the diagonal */
		VSTOREN(block + (Size) c * ld, VDIV(column[c], VSQRT(pivot)), nb);
	}
	for (int c = 0; c < nb; c++)
	{
		float		diagonal = block[(Size) c * ld + c];

		if (!(diagonal > 0) || isinf(diagonal))
			return false;
	}

	/* 2: row c of L_bb^-1 is (e_c - sum_p<c L_cp row p) / L_cc */
	SIMD_UNROLL_BLOCK
	for (int c = 0; c < V; c++)
		inverse[c] = VLOAD(SIMD(unit) + V - c);
	SIMD_UNROLL_BLOCK
	for (int c = 0; c < V; c++)
	{
		if (c >= nb)
			break;
		inverse[c] = VMUL(inverse[c], VBCAST(1.0f / block[(Size) c * ld + c]));
		SIMD_UNROLL_BLOCK
		for (int q = c + 1; q < V; q++)
			if (q < nb)
				inverse[q] = VFNMA(VBCAST(block[(Size) c * ld + q]), inverse[c], inverse[q]);

		/*
		 * Lanes 0 .. c; a whole block's takes the lanes below too (zeros,
		 * which the columns of L_bb^-1 replace next), unmasked.
		 */
		VSTOREN(block + (Size) c * ld, inverse[c], nb == V ? V : c + 1);
	}
	for (int c = 0; c < nb; c++)
		for (int q = c + 1; q < nb; q++)
			block[(Size) c * ld + q] = block[(Size) q * ld + c];
	return true;
}

/*
 * Step 3 for rows first .. first + V - 1 (those below d) of the panel under
 * the block at jb (V columns): column c becomes sum_p<=c A_p (L_bb^-1)_cp,
 * summed in registers before any is stored.
 */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(cholesky_panel) (float *a, int d, int ld, int jb, int first)
{
	const float *inverse = a + (Size) jb * ld + jb;
	VEC			sum[V];

	SIMD_UNROLL_BLOCK
	for (int c = 0; c < V; c++)
		sum[c] = VZERO();
	SIMD_UNROLL_BLOCK
	for (int p = 0; p < V; p++)
	{
		VEC			column = VLOADN(a + (Size) (jb + p) * ld + first, d - first);

		SIMD_UNROLL_BLOCK
		for (int c = p; c < V; c++)
			sum[c] = VFMA(column, VBCAST(inverse[(Size) c * ld + p]), sum[c]);
	}
	SIMD_UNROLL_BLOCK
	for (int c = 0; c < V; c++)
		VSTOREN(a + (Size) (jb + c) * ld + first, sum[c], d - first);
}

/*
 * Step 0 for columns t .. t + SIMD_CHOLESKY_COLUMNS - 1 (those before
 * end), rows first .. first + vectors * V - 1 (those below d): less
 * sum_p<jb L_p L_tp, the blocks left of the block at jb.  vectors is a
 * constant in each call.
 */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(cholesky_update) (float *a, int d, int ld, int jb, int t, int end, int first,
					   const int vectors)
{
	VEC			sum[TILE_VECTORS][SIMD_CHOLESKY_COLUMNS];
	int			target[SIMD_CHOLESKY_COLUMNS];

	/* a tile past the block's last column repeats it, and drops it when stored */
	SIMD_UNROLL
	for (int q = 0; q < SIMD_CHOLESKY_COLUMNS; q++)
	{
		target[q] = Min(t + q, end - 1);
		SIMD_UNROLL
		for (int v = 0; v < vectors; v++)
			sum[v][q] = VLOADN(a + (Size) target[q] * ld + first + v * V, d - first - v * V);
	}
	for (int p = 0; p < jb; p++)
	{
		const float *l = a + (Size) p * ld;
		VEC			rows[TILE_VECTORS];

		SIMD_UNROLL
		for (int v = 0; v < vectors; v++)
			rows[v] = VLOADN(l + first + v * V, d - first - v * V);
		SIMD_UNROLL
		for (int q = 0; q < SIMD_CHOLESKY_COLUMNS; q++)
		{
			VEC			m = VBCAST(l[target[q]]);

			SIMD_UNROLL
			for (int v = 0; v < vectors; v++)
				sum[v][q] = VFNMA(rows[v], m, sum[v][q]);
		}
	}
	SIMD_UNROLL
	for (int q = 0; q < SIMD_CHOLESKY_COLUMNS; q++)
	{
		if (t + q >= end)
			break;
		SIMD_UNROLL
		for (int v = 0; v < vectors; v++)
			VSTOREN(a + (Size) (t + q) * ld + first + v * V, sum[v][q], d - first - v * V);
	}
}

/* MfKernel.cholesky: A = L L' from a's lower triangle, as described above. */
static SIMD_FN bool
SIMD(cholesky) (float *a, int d, int ld)
{
	for (int jb = 0; jb < d; jb += V)
	{
		int			nb = Min(V, d - jb);

		for (int t = jb; t < jb + nb && jb > 0; t += SIMD_CHOLESKY_COLUMNS)
		{
			for (int first = t; first < d; first += TILE_VECTORS * V)
			{
				switch (Min(TILE_VECTORS, (d - first + V - 1) / V))
				{
#define SIMD_UPDATE(n) case n: SIMD(cholesky_update) (a, d, ld, jb, t, jb + nb, first, n); break
						SIMD_UPDATE(1);
						SIMD_UPDATE(2);
						SIMD_UPDATE(3);
#if TILE_VECTORS >= 4
						SIMD_UPDATE(4);
#endif
#undef SIMD_UPDATE
				}
			}
		}
		if (!SIMD(cholesky_diagonal_block) (a, d, ld, jb, nb))
			return false;
		if (nb == V)
			for (int first = jb + V; first < d; first += V)
				SIMD(cholesky_panel) (a, d, ld, jb, first);
	}
	return true;
}

/*
 * MfKernel.cholesky_solve: L y = x, then L' x = y, block by block with the
 * diagonal blocks' inverses that cholesky left.
 */
static SIMD_FN void
SIMD(cholesky_solve) (const float *a, int d, int ld, float *x)
{
	for (int jb = 0; jb < d; jb += V)
	{
		int			nb = Min(V, d - jb);
		const float *block = a + (Size) jb * ld + jb;
		VEC			y = VZERO();

		/* y_b = L_bb^-1 x_b, from the columns of L_bb^-1 */
		for (int c = 0; c < nb; c++)
			y = VFMA(VLOADRANGE(block + (Size) c * ld, c, nb), VBCAST(x[jb + c]), y);
		VSTOREN(x + jb, y, nb);
		/* x_p -= L_pb y_b below */
		for (int first = jb + nb; first < d; first += V)
		{
			VEC			rest = VLOADN(x + first, d - first);

			for (int c = 0; c < nb; c++)
				rest = VFNMA(VLOADN(a + (Size) (jb + c) * ld + first, d - first),
							 VBCAST(x[jb + c]), rest);
			VSTOREN(x + first, rest, d - first);
		}
	}
	for (int jb = (d - 1) / V * V; jb >= 0; jb -= V)
	{
		int			nb = Min(V, d - jb);
		const float *block = a + (Size) jb * ld + jb;
		VEC			z = VZERO();

		/* w_b = y_b - L_pb' x_p */
		for (int c = 0; c < nb && jb + nb < d; c++)
		{
			const float *below = a + (Size) (jb + c) * ld;
			VEC			dot = VZERO();

			for (int first = jb + nb; first < d; first += V)
				dot = VFMA(VLOADN(below + first, d - first), VLOADN(x + first, d - first), dot);
			x[jb + c] -= VSUM(dot);
		}
		/* x_b = L_bb^-T w_b, from the rows of L_bb^-1 */
		for (int c = 0; c < nb; c++)
			z = VFMA(VLOADN(block + (Size) c * ld, c + 1), VBCAST(x[jb + c]), z);
		VSTOREN(x + jb, z, nb);
	}
}

#if V > 1
/*
 * MfKernel.cholesky_batch (vector versions only: with one lane there is
 * nothing to batch): V systems at once, one in each lane of the vectors
 * (a structure of arrays), so that every step is a product of
 * independent FMAs, the pivots' square roots and divisions included: a
 * single system's factorisation waits, column after column, on its
 * pivot.  Batched factorisations are how small dense systems are solved
 * at speed (Dongarra et al., "The design and performance of batched BLAS
 * on modern high-performance computing systems", Procedia Computer
 * Science 108, 2017).  Each lane does the same operations in the same
 * order, so a system's solution does not depend on the others in its
 * batch, nor on its lane.
 *
 * The systems are moved into L, the packed lower triangle of a matrix of
 * d rows rounded up to a multiple of BATCH_TILE, by rows (element (i, j),
 * i >= j, at vector i (i + 1) / 2 + j), V x V blocks at a time through the
 * registers; rows past d are the identity's.  L is factored left-looking
 * by BATCH_TILE x BATCH_TILE tiles (as many sums as the registers hold):
 * a tile less the products of the rows left of it, summed in registers,
 * then the diagonal tile factored in place or an off-diagonal tile
 * solved against it.
 */

/* Vector index of element (i, j), i >= j, of the packed lower triangle. */
#define SIMD_PACKED(i, j)	((Size) (i) * ((i) + 1) / 2 + (j))

/* V vectors at p (V floats each). */
#define SIMD_AT(p, index)	((p) + (Size) (index) * V)

static inline SIMD_FN __attribute__((always_inline)) void
SIMD(batch_tile) (float *l, float *inverse, int row0, int col0, unsigned *positive)
{
	VEC			tile[BATCH_TILE][BATCH_TILE];

	SIMD_UNROLL
	for (int r = 0; r < BATCH_TILE; r++)
		SIMD_UNROLL
		for (int c = 0; c < BATCH_TILE; c++)
			tile[r][c] = row0 + r >= col0 + c
				? VLOAD(SIMD_AT(l, SIMD_PACKED(row0 + r, col0 + c))) : VZERO();
	{
		const float *row[BATCH_TILE],
				   *column[BATCH_TILE];

		SIMD_UNROLL
		for (int q = 0; q < BATCH_TILE; q++)
		{
			row[q] = SIMD_AT(l, SIMD_PACKED(row0 + q, 0));
			column[q] = SIMD_AT(l, SIMD_PACKED(col0 + q, 0));
		}
		for (int p = 0; p < col0; p++)
		{
			VEC			left[BATCH_TILE],
						top[BATCH_TILE];

			SIMD_UNROLL
			for (int q = 0; q < BATCH_TILE; q++)
			{
				left[q] = VLOAD(SIMD_AT(row[q], p));
				top[q] = VLOAD(SIMD_AT(column[q], p));
			}
			SIMD_UNROLL
			for (int r = 0; r < BATCH_TILE; r++)
				SIMD_UNROLL
				for (int c = 0; c < BATCH_TILE; c++)
					tile[r][c] = VFNMA(left[r], top[c], tile[r][c]);
		}
	}
	if (row0 == col0)
	{
		/* the diagonal tile: column c less its products with the columns before */
		SIMD_UNROLL
		for (int c = 0; c < BATCH_TILE; c++)
		{
			VEC			pivot,
						root,
						reciprocal;
			unsigned	good;

			SIMD_UNROLL
			for (int q = 0; q < c; q++)
				SIMD_UNROLL
				for (int r = c; r < BATCH_TILE; r++)
					tile[r][c] = VFNMA(tile[r][q], tile[c][q], tile[r][c]);
			pivot = tile[c][c];
			good = VPOSITIVE(pivot);
			*positive &= good;
			/* a failed lane goes on with 1, its own result discarded */
			root = VSQRT(VKEEP(pivot, good, VBCAST(1.0f)));
			reciprocal = VDIV(VBCAST(1.0f), root);
			tile[c][c] = root;
			VSTORE(SIMD_AT(inverse, col0 + c), reciprocal);
			SIMD_UNROLL
			for (int r = c + 1; r < BATCH_TILE; r++)
				tile[r][c] = VMUL(tile[r][c], reciprocal);
		}
	}
	else
	{
		SIMD_UNROLL
		for (int c = 0; c < BATCH_TILE; c++)
		{
			VEC			reciprocal = VLOAD(SIMD_AT(inverse, col0 + c));

			SIMD_UNROLL
			for (int q = 0; q < c; q++)
			{
				VEC			lower = VLOAD(SIMD_AT(l, SIMD_PACKED(col0 + c, col0 + q)));

				SIMD_UNROLL
				for (int r = 0; r < BATCH_TILE; r++)
					tile[r][c] = VFNMA(tile[r][q], lower, tile[r][c]);
			}
			SIMD_UNROLL
			for (int r = 0; r < BATCH_TILE; r++)
				tile[r][c] = VMUL(tile[r][c], reciprocal);
		}
	}
	SIMD_UNROLL
	for (int r = 0; r < BATCH_TILE; r++)
		SIMD_UNROLL
		for (int c = 0; c < BATCH_TILE; c++)
			if (row0 + r >= col0 + c)
				VSTORE(SIMD_AT(l, SIMD_PACKED(row0 + r, col0 + c)), tile[r][c]);
}

/*
 * Elements offset .. offset + rows - 1 (at most V) of the n <= V arrays
 * columns[s] (the others' lanes 0), transposed: V vectors, vector t
 * holding element offset + t of every array.  The batched Cholesky takes
 * a column of its n systems in so; gather_transposed a block of rated
 * rows.
 */
static inline SIMD_FN __attribute__((always_inline)) void
SIMD(batch_gather) (const float *const *columns, int n, Size offset, int rows, VEC *out)
{
	SIMD_UNROLL_BLOCK
	for (int s = 0; s < V; s++)
		out[s] = s < n ? VLOADN(columns[s] + offset, rows) : VZERO();
	VTRANSPOSE(out);
}

static SIMD_FN unsigned
SIMD(cholesky_batch) (float *const *a, int n, int d, int ld, float *const *x, float *scratch)
{
	int			padded = (d + BATCH_TILE - 1) / BATCH_TILE * BATCH_TILE;
	float	   *l = scratch;
	float	   *inverse = SIMD_AT(scratch, SIMD_PACKED(padded, 0));
	float	   *y = SIMD_AT(inverse, padded);
	unsigned	positive = ~0u;

	/* in: the lower triangles, V x V blocks at a time */
	for (int j = 0; j < d; j++)
		for (int from = j - j % V; from < d; from += V)
		{
			VEC			block[V];

			SIMD(batch_gather) ((const float *const *) a, n, (Size) j * ld + from, d - from, block);
			for (int t = Max(0, j - from); t < V && from + t < d; t++)
				VSTORE(SIMD_AT(l, SIMD_PACKED(from + t, j)), block[t]);
		}
	for (int i = d; i < padded; i++)
	{
		for (int j = 0; j < i; j++)
			VSTORE(SIMD_AT(l, SIMD_PACKED(i, j)), VZERO());
		VSTORE(SIMD_AT(l, SIMD_PACKED(i, i)), VBCAST(1.0f));
	}
	for (int col0 = 0; col0 < padded; col0 += BATCH_TILE)
		for (int row0 = col0; row0 < padded; row0 += BATCH_TILE)
			SIMD(batch_tile) (l, inverse, row0, col0, &positive);

	/* L y = x, then L' x = y: each solved y_i or x_i taken off the rest at once */
	for (int from = 0; from < padded; from += V)
	{
		VEC			block[V];

		SIMD(batch_gather) ((const float *const *) x, n, from, d - from, block);
		for (int t = 0; t < V && from + t < padded; t++)
			VSTORE(SIMD_AT(y, from + t), block[t]);
	}
	for (int i = 0; i < padded; i++)
	{
		VEC			solved = VMUL(VLOAD(SIMD_AT(y, i)), VLOAD(SIMD_AT(inverse, i)));

		VSTORE(SIMD_AT(y, i), solved);
		for (int r = i + 1; r < padded; r++)
			VSTORE(SIMD_AT(y, r), VFNMA(VLOAD(SIMD_AT(l, SIMD_PACKED(r, i))), solved,
										VLOAD(SIMD_AT(y, r))));
	}
	for (int i = padded - 1; i >= 0; i--)
	{
		const float *row = SIMD_AT(l, SIMD_PACKED(i, 0));
		VEC			solved = VMUL(VLOAD(SIMD_AT(y, i)), VLOAD(SIMD_AT(inverse, i)));

		VSTORE(SIMD_AT(y, i), solved);
		for (int p = 0; p < i; p++)
			VSTORE(SIMD_AT(y, p), VFNMA(VLOAD(SIMD_AT(row, p)), solved, VLOAD(SIMD_AT(y, p))));
	}

	/* out: each system's solution from the lanes */
	for (int from = 0; from < d; from += V)
	{
		VEC			block[V];

		SIMD_UNROLL_BLOCK
		for (int t = 0; t < V; t++)
			block[t] = from + t < padded ? VLOAD(SIMD_AT(y, from + t)) : VZERO();
		VTRANSPOSE(block);
		for (int s = 0; s < n; s++)
			VSTOREN(x[s] + from, block[s], d - from);
	}
	return ~positive & ((n >= 32 ? 0u : 1u << n) - 1u);
}

/*
 * MfKernel.cholesky_one: what one lane of cholesky_batch computes, for one
 * system, vectorised down the columns instead of across systems.  Each
 * element of L is, in cholesky_batch, A_rc less L_rp L_cp for p = 0 .. c -
 * 1 in order, one FMA each, then times 1 / sqrt of the pivot (the pivot's
 * own: that square root); its tiles only group that work.  Here columns
 * go four at a time: their rows, V at a time, lose the products of the
 * columns left of the four in p's order, then each of the four, in
 * order, those of the columns of the four before it, and is scaled.  The
 * solves are cholesky_batch's, on scalars: forward with four partial
 * sums per row, backward column by column.  L stays in a's lower
 * triangle (column-major), the pivots' reciprocals in scratch.
 */
static SIMD_FN bool
SIMD(cholesky_one) (float *a, int d, int ld, float *x, float *scratch)
{
	float	   *inverse = scratch;

	for (int c0 = 0; c0 < d; c0 += 4)
	{
		int			nb = Min(4, d - c0);

		/* the four columns less the columns left of them */
		for (int r0 = c0; r0 < d && c0 > 0; r0 += V)
		{
			VEC			sum[4];

			SIMD_UNROLL
			for (int c = 0; c < 4; c++)
				sum[c] = c < nb ? VLOADN(a + (Size) (c0 + c) * ld + r0, d - r0) : VZERO();
			for (int p = 0; p < c0; p++)
			{
				const float *column = a + (Size) p * ld;
				VEC			rows = VLOADN(column + r0, d - r0);

				SIMD_UNROLL
				for (int c = 0; c < 4; c++)
					sum[c] = VFNMA(rows, VBCAST(column[c0 + c < d ? c0 + c : d - 1]), sum[c]);
			}
			SIMD_UNROLL
			for (int c = 0; c < 4; c++)
				if (c < nb)
					VSTOREN(a + (Size) (c0 + c) * ld + r0, sum[c], d - r0);
		}
		/* then each, less the ones before it among the four, and scaled */
		for (int c = c0; c < c0 + nb; c++)
		{
			float	   *column = a + (Size) c * ld;
			float		pivot,
						root;

			for (int r0 = c; r0 < d; r0 += V)
			{
				VEC			sum = VLOADN(column + r0, d - r0);

				for (int q = c0; q < c; q++)
					sum = VFNMA(VLOADN(a + (Size) q * ld + r0, d - r0),
								VBCAST(a[(Size) q * ld + c]), sum);
				VSTOREN(column + r0, sum, d - r0);
			}
			pivot = column[c];
			if (!(pivot > 0) || isinf(pivot))
				return false;
			root = sqrtf(pivot);
			inverse[c] = 1.0f / root;
			column[c] = root;
			for (int r0 = c + 1; r0 < d; r0 += V)
				VSTOREN(column + r0, VMUL(VLOADN(column + r0, d - r0), VBCAST(inverse[c])),
						d - r0);
		}
	}

	/* L's rows into the upper triangle (row i at a + i * ld), for L' x = y */
	for (int cb = 0; cb < d; cb += V)
		for (int rb = cb; rb < d; rb += V)
		{
			int			columns = Min(V, d - cb);
			VEC			block[V];

			SIMD_UNROLL_BLOCK
			for (int t = 0; t < V; t++)
				block[t] = t < columns ? VLOADN(a + (Size) (cb + t) * ld + rb, d - rb) : VZERO();
			VTRANSPOSE(block);
			for (int j = 0; j < V && rb + j < d; j++)
				VSTOREN(a + (Size) (rb + j) * ld + cb, block[j], rb == cb ? j : columns);
		}
	/* the solves as the batch's, vectorised along L's columns and rows */
	for (int i = 0; i < d; i++)
	{
		float		solved = x[i] * inverse[i];

		x[i] = solved;
		for (int r0 = i + 1; r0 < d; r0 += V)
			VSTOREN(x + r0, VFNMA(VLOADN(a + (Size) i * ld + r0, d - r0), VBCAST(solved),
								  VLOADN(x + r0, d - r0)), d - r0);
	}
	for (int i = d - 1; i >= 0; i--)
	{
		float		solved = x[i] * inverse[i];

		x[i] = solved;
		for (int p0 = 0; p0 < i; p0 += V)
			VSTOREN(x + p0, VFNMA(VLOADN(a + (Size) i * ld + p0, i - p0), VBCAST(solved),
								  VLOADN(x + p0, i - p0)), i - p0);
	}
	return true;
}

/* Floats of cholesky_batch's scratch for systems of d unknowns. */
static size_t
SIMD(cholesky_batch_scratch) (int d)
{
	size_t		padded = (size_t) ((d + BATCH_TILE - 1) / BATCH_TILE * BATCH_TILE);

	return (padded * (padded + 1) / 2 + 2 * padded) * V;
}

#undef SIMD_PACKED
#undef SIMD_AT
#endif							/* V > 1 */

/*
 * MfKernel.gather_transposed: out[j n + e] = o_e[j] for the n rows
 * o_e = other + cols[e] k, that is X' (k x n, leading dimension n).  With
 * vectors, V rows at a time, V x V blocks transposed in the registers
 * (batch_gather, as the batched Cholesky takes its systems in): a
 * copy, the same floats whatever the instruction set (one float at a time
 * it was about 40% of the dual form's time at k = 64 and 128).
 */
static SIMD_FN void
SIMD(gather_transposed) (const float *other, int k, const int32 *cols, int n, float *out)
{
#if V > 1
	for (int e0 = 0; e0 < n; e0 += V)
	{
		const int	count = Min(V, n - e0);
		const float *rows[V];

		for (int s = 0; s < count; s++)
			rows[s] = other + (Size) cols[e0 + s] * k;
		for (int j0 = 0; j0 < k; j0 += V)
		{
			VEC			block[V];

			SIMD(batch_gather) (rows, count, j0, k - j0, block);
			SIMD_UNROLL_BLOCK
			for (int c = 0; c < V; c++)
				if (j0 + c < k)
					VSTOREN(out + (Size) (j0 + c) * n + e0, block[c], count);
		}
	}
#else
	for (int e = 0; e < n; e++)
	{
		const float *o = other + (Size) cols[e] * k;

		for (int j = 0; j < k; j++)
			out[(Size) j * n + e] = o[j];
	}
#endif
}

#undef SIMD_BLOCK_FLOATS
#undef SIMD_UNROLL
#undef SIMD_UNROLL_BLOCK
#undef SIMD_CHOLESKY_COLUMNS
#undef SIMD_SUM_BLOCK
#undef SIMD_PREFETCH_ROWS
#undef SIMD_ROTATED_K
#undef VROTATE
#undef GRAM_DIAGONAL_BLOCKS
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
#undef VDIV
#undef VSQRT
#undef VSUB
#undef VSUM
#undef VSUMALL
#undef VFIRST
#undef VLANE
#undef VLOADRANGE
#undef VTRANSPOSE
#undef BATCH_TILE
#undef VPOSITIVE
#undef VKEEP
#undef TILE_VECTORS
#undef TILE_COLUMNS
#undef GRAM_COLUMNS
#undef GRAM_COLUMNS_MOST
#undef GRAM_GROUP

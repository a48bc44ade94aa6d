/*-------------------------------------------------------------------------
 *
 * blas.h
 *	  The BLAS and LAPACK routines mf_ext uses, reached through a table
 *	  that blas.c fills when OpenBLAS is first needed.
 *
 *-------------------------------------------------------------------------
 */
#ifndef MF_BLAS_H
#define MF_BLAS_H

#include <cblas.h>

typedef struct MfBlas
{
	void		(*ssyrk) (CBLAS_ORDER, CBLAS_UPLO, CBLAS_TRANSPOSE, blasint n,
						  blasint k, float alpha, const float *a, blasint lda,
						  float beta, float *c, blasint ldc);
	void		(*dsyrk) (CBLAS_ORDER, CBLAS_UPLO, CBLAS_TRANSPOSE, blasint n,
						  blasint k, double alpha, const double *a, blasint lda,
						  double beta, double *c, blasint ldc);
	void		(*sgemv) (CBLAS_ORDER, CBLAS_TRANSPOSE, blasint m, blasint n,
						  float alpha, const float *a, blasint lda,
						  const float *x, blasint incx, float beta, float *y,
						  blasint incy);
	void		(*dgemv) (CBLAS_ORDER, CBLAS_TRANSPOSE, blasint m, blasint n,
						  double alpha, const double *a, blasint lda,
						  const double *x, blasint incx, double beta, double *y,
						  blasint incy);
	void		(*sgemm) (CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint m,
						  blasint n, blasint k, float alpha, const float *a,
						  blasint lda, const float *b, blasint ldb, float beta,
						  float *c, blasint ldc);
	void		(*strsm) (CBLAS_ORDER, CBLAS_SIDE, CBLAS_UPLO, CBLAS_TRANSPOSE, CBLAS_DIAG,
						  blasint m, blasint n, float alpha, const float *a, blasint lda,
						  float *b, blasint ldb);
	void		(*dtrsm) (CBLAS_ORDER, CBLAS_SIDE, CBLAS_UPLO, CBLAS_TRANSPOSE, CBLAS_DIAG,
						  blasint m, blasint n, double alpha, const double *a, blasint lda,
						  double *b, blasint ldb);
	/* LAPACK, Fortran ABI: the trailing size_t is the hidden string length */
	void		(*spotrf) (const char *uplo, const int *n, float *a,
						   const int *lda, int *info, size_t uplo_len);
	void		(*dpotrf) (const char *uplo, const int *n, double *a,
						   const int *lda, int *info, size_t uplo_len);
	void		(*spotrs) (const char *uplo, const int *n, const int *nrhs,
						   const float *a, const int *lda, float *b,
						   const int *ldb, int *info, size_t uplo_len);
	void		(*dpotrs) (const char *uplo, const int *n, const int *nrhs,
						   const double *a, const int *lda, double *b,
						   const int *ldb, int *info, size_t uplo_len);
	void		(*spocon) (const char *uplo, const int *n, const float *a,
						   const int *lda, const float *anorm, float *rcond,
						   float *work, int *iwork, int *info, size_t uplo_len);
	void		(*dpocon) (const char *uplo, const int *n, const double *a,
						   const int *lda, const double *anorm, double *rcond,
						   double *work, int *iwork, int *info, size_t uplo_len);
	int			max_threads;	/* threads that may call it at once */
} MfBlas;

/* The table; loads OpenBLAS on first use.  Backend thread only. */
extern const MfBlas *mf_blas(void);

#endif							/* MF_BLAS_H */

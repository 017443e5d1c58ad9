/**
 * @file mproc_mpi.h
 * mproc_mpi: the same mproc_pool over the ranks of an MPI job.
 *
 * An optional component (CMake option MPROC_WITH_MPI, target
 * mproc::mproc_mpi, pkg-config mproc_mpi), a library of its own so that
 * the core never links MPI. This header includes mproc.h and no MPI
 * header: a program that does not call MPI itself needs no MPI include
 * path. Design, failure semantics and how it differs from mpi4py's
 * MPIPoolExecutor: docs/mpi.md.
 *
 *   mpirun -n 4 ./app
 *
 *   int main(int argc, char **argv) {
 *       mproc_pool *pool;
 *       mproc_init(argc, argv);
 *       if (mproc_mpi_pool_create(&pool, NULL, NULL) != 0)  (ranks 1..3 serve)
 *           return 1;
 *       mproc_pool_map(pool, square, inputs, 0, &out, NULL);      (rank 0)
 *       mproc_pool_close(pool);
 *       mproc_pool_join(pool, MPROC_FOREVER);
 *       pool = mproc_pool_destroy(pool);
 *       return 0;
 *   }
 *
 * Static world (mpi4py's MPICommExecutor): every rank of the job calls
 * mproc_mpi_pool_create(). Rank 0 becomes the pool's master and gets an
 * ordinary mproc_pool: every call of mproc.h's Pool section works on it
 * unchanged (map, starmap, imap, imap_unordered, apply, apply_async,
 * futures, stats, progress). Ranks 1..N-1 become its workers: they run the
 * initializer and then the tasks rank 0 hands out, and do not come back
 * from the call while the master has work for them, so that `main` reads
 * the same on every rank. By default a worker rank serves every pool rank
 * 0 creates, one after another, and when rank 0 has finished (its
 * MPI_Finalize, the end of its program, or mproc_mpi_shutdown()) the
 * worker rank finalizes MPI and exits with status 0: it never returns
 * from the call, as a spawned child never returns from mproc_init. With
 * MPROC_MPI_RETURN a worker rank returns MPROC_MPI_WORKER as soon as the
 * master's pool has ended, and the program goes on (each pool is then one
 * collective call on every rank).
 *
 * Functions are found on a worker rank as (module, offset from the
 * module's base), where the module is identified by its ELF build-id (a
 * hash of the file's contents where it has none), never by its path,
 * device or inode: the same binary may be installed in other places on
 * other machines. The first create compares the program and mproc's
 * libraries on every rank with rank 0's, and fails with MPROC_ERESOLVE on
 * every rank when one differs, naming the rank.
 *
 * MPI is fail-stop. A task function's error fails only its task, as in the
 * local pool. A rank that crashes ends the whole job (Open MPI's and
 * MPICH's launchers abort the job when a rank dies; Debian's Open MPI has
 * no ULFM to survive it): before it dies, a worker rank prints which rank
 * it was and which task it ran, and the launcher then ends every rank.
 * The pool never hangs on a dead rank, and never replaces one.
 *
 * Outside an MPI job (no mpirun), or in a world of one rank, create makes
 * a local pool (mproc_pool_create) unless MPROC_MPI_NO_FALLBACK asks for
 * MPROC_ENOSYS instead.
 */
#ifndef MPROC_MPI_H
#define MPROC_MPI_H

#include "mproc.h"

#ifdef __cplusplus
extern "C" {
#endif

/** @defgroup mpi MPI pool
 * @{
 */

/** @def MPROC_MPI_API
 * Marks the functions of mproc_mpi, as MPROC_API does those of mproc (the
 * library is static when mproc is: MPROC_STATIC). */
#if defined(MPROC_STATIC)
#define MPROC_MPI_API
#elif defined(_WIN32)
#if defined(MPROC_MPI_BUILDING)
#define MPROC_MPI_API __declspec(dllexport)
#else
#define MPROC_MPI_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define MPROC_MPI_API __attribute__((visibility("default")))
#else
#define MPROC_MPI_API
#endif

/** mproc_mpi_options.flags: worker ranks return from create when the
 * master's pool has ended (MPROC_MPI_WORKER), instead of serving every
 * pool until the master has finished. */
#define MPROC_MPI_RETURN 1u
/** mproc_mpi_options.flags: outside an MPI job or in a world of one rank,
 * create returns MPROC_ENOSYS instead of making a local pool. */
#define MPROC_MPI_NO_FALLBACK 2u

/** What create returns on a worker rank under MPROC_MPI_RETURN once the
 * master's pool has ended (*out is NULL): not an error. */
#define MPROC_MPI_WORKER 1

/** The settings of mproc_mpi_pool_create(); zero-filled (or NULL) means
 * the defaults. */
typedef struct mproc_mpi_options {
    /** Chunks in flight per worker rank: 1 (0 means 1), or 2 to hide the
     * round trip (a rank's next chunk is on its way while it runs one).
     * Read on rank 0 only. */
    int depth;
    /** MPROC_MPI_RETURN, MPROC_MPI_NO_FALLBACK; read on every rank. */
    unsigned flags;
} mproc_mpi_options;

/** Makes the pool of the job (see above); every rank calls it.
 *
 * On rank 0: 0 with *out a pool whose workers are ranks 1..workers
 * (opt->workers: 0 means every other rank; at most N-1), and every Pool
 * call of mproc.h works on it. opt->initializer runs once on each worker
 * rank (a failing one: MPROC_ECHILD with opt->init_status, as
 * mproc_pool_create). opt->method is not used (mpirun starts the ranks);
 * opt->maxtasksperchild other than 0 is MPROC_ENOSYS (a rank cannot be
 * replaced); opt->on_death is moot (a rank's death ends the job). Errors:
 * MPROC_EINVAL (NULL out, workers < 0 or > N-1, depth not 0..2, unknown
 * flags, an option mproc_pool_create refuses); MPROC_ERESOLVE when a
 * rank's program or mproc library differs from rank 0's (init_status:
 * index the rank, message naming it and its host), also an initializer in
 * no module; MPROC_EBUSY while another pool of this job is live (one at a
 * time); MPROC_ECLOSED after mproc_mpi_shutdown(); MPROC_ESTATE once MPI
 * is finalized; MPROC_EPERM when called on a worker rank from a task or an
 * initializer.
 *
 * On a worker rank: serves (see above), *out NULL. By default it does not
 * return once it serves: it exits with status 0 when the master has
 * finished. Under MPROC_MPI_RETURN: MPROC_MPI_WORKER when the master's
 * pool has ended, the master's error when its create failed (MPROC_ECHILD,
 * MPROC_EINVAL, ...), MPROC_ECLOSED when the master has finished. Both:
 * MPROC_ERESOLVE when the binaries differ (every rank), MPROC_EINVAL for
 * unknown flags, MPROC_EPERM from a task.
 *
 * Outside an MPI job: as mproc_pool_create(out, opt), or MPROC_ENOSYS
 * under MPROC_MPI_NO_FALLBACK; the same in a world of one rank. MPI is
 * initialized here (MPI_THREAD_SERIALIZED: any thread may drive the pool,
 * one at a time) unless the program did it, and then finalized when the
 * program ends; mpi and opt may be NULL. */
MPROC_MPI_API int mproc_mpi_pool_create(mproc_pool **out,
                                        const mproc_pool_options *opt,
                                        const mproc_mpi_options *mpi);

/** Joins the MPI job if there is one (initializing MPI as create does)
 * and gives this process's rank and the job's size: 0, or MPROC_ENOSYS
 * outside an MPI job (rank 0, size 1), MPROC_ESTATE once MPI is
 * finalized. Either pointer may be NULL. */
MPROC_MPI_API int mproc_mpi_world(int *rank, int *size);

/** On rank 0: no pool follows; the worker ranks leave create (they exit,
 * or return MPROC_ECLOSED under MPROC_MPI_RETURN). 0 (also outside a job
 * and when done already), MPROC_EBUSY while a pool is live (destroy it
 * first). MPI_Finalize and the end of the program do the same. On a worker
 * rank: MPROC_EPERM, the master's call. */
MPROC_MPI_API int mproc_mpi_shutdown(void);

/** @} */

#ifdef __cplusplus
}
#endif

#endif /* MPROC_MPI_H */

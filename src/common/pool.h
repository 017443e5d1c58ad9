/*
 * Internals shared by the pool engine (pool.c) and its local transport
 * (pool-local.c). The transport contract itself is public, in
 * include/mproc_transport.h, so that a component library (mproc_mpi) can
 * give the engine its own.
 */
#ifndef MPROC_POOL_H
#define MPROC_POOL_H

#include "internal.h"
#include "mproc_transport.h"

/* The local transport for `workers` workers: processes started by fork or
 * spawn, a duplex pipe each, and a shared slot each where the worker writes
 * which task it starts. Fills *t; the options are copied. */
int mproc__pool_local_transport(const mproc_pool_options *opt, int workers,
                                mproc_pool_transport *t);

/* The engine's own bound on a function description (transport describe). */
#define MPROC__POOL_DESC_MAX 4096

#endif /* MPROC_POOL_H */

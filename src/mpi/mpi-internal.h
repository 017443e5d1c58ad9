/*
 * Internals of mproc_mpi shared by its two files: mpi.c (the world, the
 * transport, the worker ranks) and ident.c (which module a function is in,
 * and the identity of a module across machines). Nothing here includes
 * mpi.h: identity needs no MPI.
 */
#ifndef MPROC_MPI_INTERNAL_H
#define MPROC_MPI_INTERNAL_H

#include "mproc_mpi.h"
#include "mproc_transport.h"

#include <stddef.h>
#include <stdint.h>

/* A module's identity: its ELF build-id, or a hash of its file. */
enum {
    MPROC__MPI_ID_NONE = 0,
    MPROC__MPI_ID_BUILD = 1,
    MPROC__MPI_ID_HASH = 2
};
#define MPROC__MPI_ID_MAX 64

typedef struct mproc__mpi_id {
    uint8_t kind; /* MPROC__MPI_ID_* */
    uint8_t len;  /* bytes of id used */
    uint8_t id[MPROC__MPI_ID_MAX];
} mproc__mpi_id;

/* The identity of the module that holds code address addr (its base in
 * *base, a short name for messages in name): 0 or MPROC_ERESOLVE. */
int mproc__mpi_module_of(const void *addr, uintptr_t *base, mproc__mpi_id *id,
                         char *name, size_t cap);

/* The identity of this process's program file (the main executable). */
int mproc__mpi_program_id(mproc__mpi_id *id);

/* A description of fn for another rank: 'B' kind len 0, u64 offset from
 * its module's base, the id, the module's name. 0, MPROC_ERESOLVE (in no
 * module), MPROC_ETOOSMALL. */
int mproc__mpi_describe(const void *fn, void *buf, size_t cap, size_t *len);

/* The inverse on a worker rank: the loaded module with that identity, the
 * offset inside one of its executable segments. 0 or MPROC_ERESOLVE. */
int mproc__mpi_resolve(const void *desc, size_t len, void **fn);

/* Hex of an identity into buf (at most 16 bytes of it, for messages). */
void mproc__mpi_id_hex(const mproc__mpi_id *id, char *buf, size_t cap);

#endif /* MPROC_MPI_INTERNAL_H */

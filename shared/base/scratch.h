/* scratch.h - per-thread growable scratch buffers, 64-byte aligned.
 *
 * t2_scratch_get(slot, bytes) returns the calling thread's buffer for `slot`, at least `bytes`
 * long. The buffer is kept between calls and only grows (to a multiple of 4 KiB); its contents
 * survive a call that does not grow it and are undefined after one that does. Each slot belongs
 * to one module (the list below), so buffers used at the same time never alias. Buffers are freed
 * when the thread exits, or on the calling thread by t2_scratch_release / t2_scratch_free_thread.
 */
#ifndef T2_SCRATCH_H
#define T2_SCRATCH_H

#include <stddef.h>

enum {
    T2_SCRATCH_KERN_X,     /* engine/kernels.c: prepared (quantized) x of matrix-vector calls */
    T2_SCRATCH_KERN_PTRS,  /* engine/kernels.c: tables of prepared-x pointers */
    T2_SCRATCH_QMM,        /* engine/qgemm.c: prepared rows of a quantized matmul */
    T2_SCRATCH_GEMM_PANEL, /* engine/gemm.c: the packed panel of W */
    T2_SCRATCH_GEMM_X,     /* engine/gemm.c: X rounded to bf16 */
    T2_SCRATCH_SLOTS
};

/* NULL when out of memory or slot is out of range (the old buffer, if any, is kept). */
void *t2_scratch_get(int slot, size_t bytes);
/* Bytes the calling thread's buffer for slot holds now (0: none). */
size_t t2_scratch_cap(int slot);
/* Counts the calling thread's frees and regrowths of slot: a module that caches what its buffer
 * holds keeps the value it saw when it filled it and trusts the cache only while it is equal. */
unsigned t2_scratch_epoch(int slot);
/* Frees the calling thread's buffer for slot / for every slot. */
void t2_scratch_release(int slot);
void t2_scratch_free_thread(void);

#endif

/* Test cases for every op of the registry, shared by the forward and the
 * contract suites. The table is generated from TG_OP_LIST, so an op without
 * cases does not compile.
 *
 * A case says how to make the inputs (shapes, value range, integer array),
 * how to run the op (build) and what it should give, computed the plain way
 * in double from the same input values (reference). */
#ifndef OP_CASES_H
#define OP_CASES_H

#include "tg_op.h"

#define OPC_MAX_IN 3
#define OPC_MAX_INTS 12

typedef struct op_case op_case;

/* Runs the op under test on tape t; ints is a mutable copy of c->ints. */
typedef tg_tensor *(*opc_build_fn)(tg_tape *t, const op_case *c, tg_tensor **in, const int *ints);
/* Writes the expected output (out_rows x out_cols values) into out. */
typedef void (*opc_reference_fn)(const op_case *c, tg_tensor *const *in, const int *ints,
                                 double *out);

struct op_case {
    const char *what; /* label for failure messages */
    int n_in;         /* tensor inputs, every one differentiable */
    int rows[OPC_MAX_IN], cols[OPC_MAX_IN];
    double lo, hi;    /* values uniform in [lo, hi] ... */
    int random_sign;  /* ... times a random sign (keeps |x| >= lo away from kinks) */
    int n_ints;       /* integer input (ids, targets), 0 if none */
    int ints[OPC_MAX_INTS];
    int arg[4];       /* op arguments: transpose flags, offsets, ignore index, seed */
    double farg;      /* real argument: scale factor, dropout p */
    int out_rows, out_cols;
    opc_build_fn build;
    opc_reference_fn reference;
};

typedef struct op_cases {
    const char *name;
    const op_case *cases;
    int n;
} op_cases;

extern const op_cases op_case_table[TG_OP_COUNT];

/* Heap inputs of case c filled from seed; input k gets a gradient iff bit k
 * of grad_mask is set. Free with opc_free_inputs. */
void opc_make_inputs(const op_case *c, unsigned grad_mask, uint64_t seed,
                     tg_tensor *in[OPC_MAX_IN]);
void opc_free_inputs(const op_case *c, tg_tensor *in[OPC_MAX_IN]);

/* Tolerance of the forward comparison: tight in double, float rounding else. */
#ifdef TG_REAL_DOUBLE
#define OPC_FWD_TOL 1e-12
#else
#define OPC_FWD_TOL 2e-6
#endif

#endif

/* The op registry: one entry per op of TG_OP_LIST, in enum order. The engine
 * dispatches VJPs through this table; nothing outside ops/ switches on an op. */
#include "tg_op.h"

#define TG_X_ENTRY(E, name) [TG_OP_##E] = {#name, tg_vjp_##name},
const tg_op_info tg_op_table[TG_OP_COUNT] = {TG_OP_LIST(TG_X_ENTRY)};
#undef TG_X_ENTRY

_Static_assert(sizeof tg_op_table / sizeof tg_op_table[0] == TG_OP_COUNT,
               "op table and op enum differ in length");

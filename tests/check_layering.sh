#!/bin/sh
# Layers and programs may use only the public headers: no node internals, no
# backward code. Fails naming each file that includes ops/ internals or
# touches tape nodes.
root="${1:?usage: check_layering.sh SOURCE_ROOT}"
bad=$(grep -lE '#include *"[^"]*(tg_op\.h|tg_fastmath\.h)"|tg_node|tg_vjp_|tg_op_record' \
      "$root"/layers/*.c "$root"/layers/*.h "$root"/examples/*/*.c "$root"/examples/*/*.h 2>/dev/null)
if [ -n "$bad" ]; then
    echo "these files reach into ops/ internals (use only tapegrad.h and public headers):"
    echo "$bad"
    exit 1
fi
echo "layering ok: layers/ and examples/ use only public headers"

#!/bin/sh
# Folder imports run one way: examples -> layers -> ops -> graph, optim beside
# (optim -> graph). A file may include headers of its own folder and of the
# folders it builds on; the engine's private headers (graph/tg_engine.h,
# tg_gemm.h, tg_panels.h) and ops/ internals are for
# graph/ and ops/ only; layers and programs see public headers and touch no
# tape node. Fails naming each file and header that breaks a rule.
root="${1:?usage: check_layering.sh SOURCE_ROOT}"
status=0

# The folder that owns a header (by file name), or nothing for a header of
# no library folder (a program's own, a system one, the generated config).
owner() {
    for d in graph ops layers optim; do
        [ -f "$root/$d/$1" ] && { echo "$d"; return; }
    done
}

# allowed FROM TO: may a file under FROM include a header of TO?
allowed() {
    case "$1:$2" in
        graph:graph | ops:ops | ops:graph | layers:layers | layers:graph | optim:optim | \
        optim:graph | examples:layers | examples:graph | examples:optim) return 0 ;;
    esac
    return 1
}

private='tg_engine.h tg_gemm.h tg_panels.h'
for from in graph ops layers optim examples; do
    for f in $(find "$root/$from" -name '*.[ch]' | sort); do
        for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
            base=${h##*/}
            to=$(owner "$base")
            [ -z "$to" ] && continue
            if [ "$from" = "$to" ]; then continue; fi
            bad=""
            allowed "$from" "$to" || bad="$from/ may not include $to/"
            case " $private " in
                *" $base "*) [ "$from" = ops ] || [ "$from" = graph ] || bad="$base is private to graph/ and ops/" ;;
            esac
            if [ -n "$bad" ]; then
                echo "${f#"$root"/}: includes \"$h\": $bad"
                status=1
            fi
        done
    done
done

# Layers and programs build graphs from public op constructors only.
nodes=$(grep -lE 'tg_node|tg_vjp_|tg_op_record|tg_tape_ext' \
        "$root"/layers/*.c "$root"/layers/*.h "$root"/examples/*/*.c "$root"/examples/*/*.h \
        2>/dev/null)
if [ -n "$nodes" ]; then
    echo "these files touch tape nodes (use only the public op constructors):"
    echo "$nodes"
    status=1
fi

if [ $status -eq 0 ]; then
    echo "layering ok: examples -> layers -> ops -> graph, optim -> graph; no private header crosses"
fi
exit $status
